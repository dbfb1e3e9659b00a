//! The TCP listener: connections accepted and served over HTTP/1.1 (with upgrades, for exec and
//! port-forward) and HTTP/2, with the protections kube-apiserver's `http.Server` has.
//!
//! - **Header-read timeout** (32 s, upstream's `ReadHeaderTimeout`): a client that has not sent
//!   a whole request head by then, a slow-loris dribbling bytes or a connection left idle
//!   between requests, is disconnected. (hyper starts the timer whenever it waits for a head,
//!   so it also bounds HTTP/1 keep-alive idleness; clients reconnect as they do after Go's
//!   `IdleTimeout`.) The same bound applies from a connection's start to its first request
//!   ([`activity`]: hyper has no timer on a new connection's first bytes).
//! - **Idle timeout** (90 s, upstream's `IdleTimeout`): an HTTP/2 connection with no request
//!   open for that long is sent GOAWAY ([`activity`]).
//! - **Status bodies for hyper's own answers** to heads it cannot parse (400, 414, 431):
//!   [`parse_errors`].
//! - **Connections per client**: at most [`ServeOptions::max_connections_per_client`] open from
//!   one IP address; more are closed at once, so one client cannot take every file descriptor.
//! - **Out of file descriptors**: `accept` failing (EMFILE) pauses accepting for a moment
//!   instead of spinning; the connections already open are served on.
//! - **In-flight limits** ([`crate::max_in_flight`]) on every request.
//! - **TLS** ([`Transport::Tls`]): the handshake must finish within the header-read timeout;
//!   each request is then authenticated ([`crate::authentication`]) before anything else.
//!
//! `stop` stops accepting, ends the open watches, and lets each connection finish the request
//! it is serving.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

mod activity;
mod parse_errors;

use crate::AppState;
use crate::authentication::{ConnectionCredentials, Transport};
use crate::max_in_flight::{self, InFlightLimits};

/// kube-apiserver's `ReadHeaderTimeout`.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);

/// kube-apiserver's `IdleTimeout`.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How the listener serves.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// HTTPS (the product), or plain HTTP as one user (tests of the HTTP layer; the default).
    pub transport: Transport,
    pub limits: InFlightLimits,
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request in progress.
    pub idle_timeout: Duration,
    /// Open connections allowed from one IP address.
    pub max_connections_per_client: usize,
    /// How long this server stays in the `kubernetes` Endpoints without renewing its lease
    /// ([`crate::kubernetes_service`]; upstream: 15 s).
    pub endpoint_lease_ttl: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            transport: Transport::InsecurePlainHttpAs(pernode_auth::user::UserInfo::new(
                "system:admin",
                [pernode_auth::user::SYSTEM_PRIVILEGED_GROUP],
            )),
            limits: InFlightLimits::default(),
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections_per_client: 2048,
            endpoint_lease_ttl: crate::kubernetes_service::DEFAULT_LEASE_TTL,
        }
    }
}

/// Open connections by client address.
#[derive(Clone, Default)]
struct ConnectionCounts(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One client's open connection; uncounted when dropped.
struct Counted {
    counts: ConnectionCounts,
    ip: IpAddr,
}

impl ConnectionCounts {
    fn admit(&self, ip: IpAddr, max: usize) -> Option<Counted> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let open = counts.entry(ip).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(Counted {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = counts.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `stop` resolves; then stops accepting and returns once
/// every connection has finished.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    state: Arc<AppState>,
    options: ServeOptions,
    stop: impl std::future::Future<Output = ()>,
) {
    // Audit outside the limits: a 429 is audited, as upstream's filter chain audits it.
    let router = crate::audit::layer(max_in_flight::limit(router, options.limits), &state);
    let counts = ConnectionCounts::default();
    // Connections hold a receiver: the sender's `closed` says when the last one has finished.
    let (draining, drained) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of descriptors (or another transient failure): back off, keep serving.
                    tracing::warn!(error = %e, "accept failed; pausing before the next");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Some(counted) = counts.admit(remote.ip(), options.max_connections_per_client) else {
            tracing::debug!(client = %remote, "too many connections from this client; closing");
            drop(tcp);
            continue;
        };
        // Small request/response exchanges on keep-alive connections: Nagle would add 40 ms.
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let state = state.clone();
        let shutdown = drained.clone();
        let transport = options.transport.clone();
        let header_read_timeout = options.header_read_timeout;
        let timeouts = Timeouts {
            header_read: options.header_read_timeout,
            idle: options.idle_timeout,
        };
        tokio::spawn(async move {
            let _counted = counted;
            match transport {
                Transport::InsecurePlainHttpAs(user) => {
                    let credentials = ConnectionCredentials::trusted(user);
                    let service = authenticated(router, state, credentials, remote);
                    serve_connection(tcp, service, timeouts, shutdown, remote).await;
                }
                Transport::Tls(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
                    // A client that never finishes its handshake holds a descriptor: bound it
                    // as a slow request head is bounded.
                    let handshake = async {
                        if pernode_auth::plain_http::sent(&tcp).await {
                            pernode_auth::plain_http::answer(tcp).await;
                            return Err(std::io::Error::other("plain HTTP on the TLS port"));
                        }
                        acceptor.accept(tcp).await
                    };
                    let stream = match tokio::time::timeout(header_read_timeout, handshake).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(client = %remote, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(client = %remote, "TLS handshake timed out");
                            return;
                        }
                    };
                    let credentials = ConnectionCredentials::from_certificates(
                        &tls,
                        stream.get_ref().1.peer_certificates(),
                    );
                    let service = authenticated(router, state, credentials, remote);
                    serve_connection(stream, service, timeouts, shutdown, remote).await;
                }
            }
        });
    }
    drop(listener);
    let _ = draining.send(true);
    drop(drained);
    draining.closed().await;
}

/// Raises the soft limit of open files to the hard limit, as far as it allows, and returns the
/// soft limit then in force (`None`: unlimited). For control-plane processes: every client
/// connection and watch holds a descriptor, and the usual soft limit (1,024) is reached by a
/// modest fleet of agents.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "could not raise the open file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// `router` with each request marked with who sent it (and, when the server audits, from
/// where).
fn authenticated(
    router: Router,
    state: Arc<AppState>,
    credentials: ConnectionCredentials,
    remote: std::net::SocketAddr,
) -> impl tower::Service<
    http::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |request: http::Request<Incoming>| {
        let (mut parts, body) = request.into_parts();
        credentials.authenticate(&state, &parts.headers, &mut parts.extensions);
        if state.audit.is_some() {
            parts.extensions.insert(crate::audit::ClientAddr(remote));
        }
        let request = http::Request::from_parts(parts, axum::body::Body::new(body));
        let router = router.clone();
        async move {
            use tower::ServiceExt;
            router.oneshot(request).await
        }
    })
}

/// A connection's time bounds.
#[derive(Clone, Copy, Debug)]
struct Timeouts {
    header_read: Duration,
    idle: Duration,
}

/// Serves one connection until it ends, gracefully once `shutdown` flips, or once it has been
/// idle too long.
async fn serve_connection<IO, S>(
    io: IO,
    service: S,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
    remote: std::net::SocketAddr,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            http::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let activity = activity::Activity::new();
    let tracked = {
        let activity = activity.clone();
        tower::service_fn(move |request: http::Request<Incoming>| {
            let open = activity.begin();
            let service = service.clone();
            async move {
                use tower::ServiceExt;
                let response = service.oneshot(request).await?;
                Ok::<_, std::convert::Infallible>(
                    response
                        .map(|body| axum::body::Body::new(activity::TrackedBody::new(body, open))),
                )
            }
        })
    };
    let service = TowerToHyperService::new(tracked);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    let io = TokioIo::new(parse_errors::StatusBodies::new(io));
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    // Deadlines only move later, except when a first request ends on a connection whose idle
    // timeout is shorter than its first-head one: look at least that often.
    let period = timeouts.idle.min(timeouts.header_read);
    let mut next_check = tokio::time::Instant::now() + period;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(client = %remote, error = %e, "connection ended");
                }
                break;
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    conn.as_mut().graceful_shutdown();
                    // Keep driving the connection to its graceful end.
                    if let Err(e) = conn.as_mut().await {
                        tracing::trace!(client = %remote, error = %e, "connection ended");
                    }
                    break;
                }
            }
            _ = tokio::time::sleep_until(next_check) => {
                let now = tokio::time::Instant::now();
                match activity.idle_deadline(timeouts.header_read, timeouts.idle) {
                    Some(deadline) if deadline <= now => {
                        tracing::debug!(client = %remote, "idle connection closed");
                        conn.as_mut().graceful_shutdown();
                        // Nothing is open, so this ends at once; bounded all the same.
                        let _ = tokio::time::timeout(timeouts.header_read, conn.as_mut()).await;
                        break;
                    }
                    Some(deadline) => next_check = deadline.min(now + period),
                    // A request is open; look again after a while.
                    None => next_check = now + period,
                }
            }
        }
    }
}
