//! One API client over several API servers, for `pernode agent --server A --server B`: each
//! request goes to the server that answered last; one that cannot be connected to is passed
//! over for the next, with the same request (it was never sent, so resending it is safe). An
//! error after the connection was made (a watch cut when its server died) is returned as it
//! is, and the next request starts at the next server.
//!
//! `pernode sim` and `pernode controllers` take `--server` the same way.
//!
//! The kubelet takes one server (a load balancer in front of several); k3s's agent balances
//! over the servers it learns from the `kubernetes` Endpoints. This is the simplest of the
//! two that needs no load balancer: a fixed list, tried in turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use kube::client::Body;

/// A tower service over one [`kube::Client`] per server (each with the same credentials).
#[derive(Clone)]
pub struct Failover {
    clients: Arc<[kube::Client]>,
    current: Arc<AtomicUsize>,
}

impl Failover {
    /// Over `clients` (at least one), starting with the first.
    pub fn new(clients: Vec<kube::Client>) -> Failover {
        Failover {
            clients: clients.into(),
            current: Arc::default(),
        }
    }

    /// A client sending every request through this service.
    pub fn into_client(self) -> kube::Client {
        kube::Client::new(self, "default")
    }
}

/// `config`'s client, or with `servers` one client per server (`config`'s credentials and CA)
/// behind a [`Failover`].
pub fn client_over(config: kube::Config, servers: &[String]) -> anyhow::Result<kube::Client> {
    use anyhow::Context;
    if servers.is_empty() {
        return kube::Client::try_from(config).context("building the API client");
    }
    let mut clients = Vec::with_capacity(servers.len());
    for server in servers {
        let mut config = config.clone();
        config.cluster_url = server
            .parse()
            .with_context(|| format!("--server {server:?} is not a URL"))?;
        clients.push(kube::Client::try_from(config).context("building the API client")?);
    }
    Ok(Failover::new(clients).into_client())
}

/// Whether `error` is a failure to connect (nothing was sent).
fn is_connect_error(error: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(client) = e.downcast_ref::<hyper_util::client::legacy::Error>()
            && client.is_connect()
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// `parts` and `body` as a new request (extensions are not carried: kube sets none).
fn rebuild(parts: &http::request::Parts, body: &bytes::Bytes) -> Request<Body> {
    let mut request = Request::new(Body::from(body.clone()));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request
}

impl tower::Service<Request<Body>> for Failover {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), kube::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body.collect_bytes().await?;
            let count = this.clients.len();
            let first = this.current.load(Ordering::Relaxed);
            let mut last_error = None;
            for step in 0..count {
                let index = (first + step) % count;
                let Some(client) = this.clients.get(index) else {
                    continue;
                };
                match client.send(rebuild(&parts, &body)).await {
                    Err(e) if is_connect_error(&e) => {
                        tracing::warn!(server = index, error = %e, "cannot reach this API server, trying the next");
                        last_error = Some(e);
                    }
                    Err(e) => {
                        // Sent, maybe: not resent; the next request tries the next server.
                        this.current.store((index + 1) % count, Ordering::Relaxed);
                        return Err(e);
                    }
                    Ok(response) => {
                        this.current.store(index, Ordering::Relaxed);
                        return Ok(response);
                    }
                }
            }
            Err(last_error.unwrap_or_else(|| {
                kube::Error::Service("no API server to send the request to".into())
            }))
        })
    }
}
