//! Certificate rotation, as client-go's certificate manager in the kubelet: the node's API
//! client sends each request through the client of the current certificate, and a renewal
//! loop requests a new certificate (authenticated with the current one, which the
//! `selfnodeclient` rule approves) once the jittered deadline passes, saves it and swaps it in.
//! Connections opened with the old certificate (long watches) end on their own before it
//! expires; new requests use the new one at once.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::JoinError;
use super::credentials::{self, Auth, Current, Store};

/// The retry delay after a failed renewal (client-go backs off from 2 s up to 5 min; the
/// deadline has passed already, so a steady retry is enough).
const RETRY: Duration = Duration::from_secs(10);

/// The current certificate's client and what it was made from.
struct Active {
    client: kube::Client,
    current: Current,
}

/// The node's credentials in use, swappable.
#[derive(Clone)]
pub struct Rotating {
    active: Arc<ArcSwap<Active>>,
}

impl Rotating {
    /// Starts with `current` for `server`.
    pub async fn new(server: &str, current: Current) -> Result<Rotating, JoinError> {
        let client = certificate_client(server, &current).await?;
        Ok(Rotating {
            active: Arc::new(ArcSwap::from_pointee(Active { client, current })),
        })
    }

    /// A client whose every request uses the then-current certificate.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(Forward(self.active.clone()), "default")
    }

    /// The credentials in use.
    pub fn current(&self) -> Current {
        self.active.load().current.clone()
    }

    async fn swap(&self, server: &str, current: Current) -> Result<(), JoinError> {
        let client = certificate_client(server, &current).await?;
        self.active.store(Arc::new(Active { client, current }));
        Ok(())
    }
}

async fn certificate_client(server: &str, current: &Current) -> Result<kube::Client, JoinError> {
    credentials::client(
        server,
        &current.ca_pem,
        Auth::Certificate {
            cert_pem: &current.issued.cert_pem,
            key_pem: &current.issued.key_pem,
        },
    )
    .await
}

/// The tower service behind [`Rotating::client`]: each request goes to the current client.
#[derive(Clone)]
struct Forward(Arc<ArcSwap<Active>>);

impl tower::Service<http::Request<kube::client::Body>> for Forward {
    type Response = http::Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, kube::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), kube::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<kube::client::Body>) -> Self::Future {
        let client = self.0.load().client.clone();
        Box::pin(async move { client.send(request).await })
    }
}

/// When to renew a certificate valid from `not_before` to `not_after`, taken into use at
/// `since`: at 70% of its life plus up to a fifth of that again (client-go's
/// `nextRotationDeadline` with jitter `r` in 0..1).
///
/// Deviation: the life is counted from `since` when that is later than `not_before`. Signers
/// backdate `notBefore` by 5 minutes (upstream's), which for short certificates (a few
/// minutes, as in tests) puts client-go's deadline in the past at once and renews in a
/// loop; counted from `since` the deadline still falls before `not_after`.
pub fn rotation_deadline(
    not_before: k8s_openapi::jiff::Timestamp,
    not_after: k8s_openapi::jiff::Timestamp,
    since: k8s_openapi::jiff::Timestamp,
    r: f64,
) -> k8s_openapi::jiff::Timestamp {
    let not_before = not_before.max(since);
    let total = not_after.duration_since(not_before).as_secs_f64().max(0.0);
    let offset = total * 0.7 * (1.0 + 0.2 * r.clamp(0.0, 1.0));
    let offset = k8s_openapi::jiff::SignedDuration::from_secs_f64(offset);
    not_before.checked_add(offset).unwrap_or(not_after)
}

/// Renews the certificate of `rotating` before each deadline, forever.
pub async fn renew(
    rotating: Rotating,
    store: Store,
    node_name: String,
    server: String,
) -> Result<(), JoinError> {
    loop {
        let current = rotating.current();
        let deadline = rotation_deadline(
            current.not_before,
            current.not_after,
            current.since,
            rand::random(),
        );
        let wait = Duration::try_from(deadline.duration_since(k8s_openapi::jiff::Timestamp::now()))
            .unwrap_or(Duration::ZERO);
        tracing::info!(node = %node_name, %deadline, "next client certificate rotation");
        tokio::time::sleep(wait).await;
        loop {
            match renew_once(&rotating, &store, &node_name, &server).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(node = %node_name, error = %e, "renewing the client certificate");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

async fn renew_once(
    rotating: &Rotating,
    store: &Store,
    node_name: &str,
    server: &str,
) -> Result<(), JoinError> {
    let current = rotating.current();
    let issued = super::csr::request(&rotating.client(), node_name).await?;
    let renewed = store.save(&current.ca_pem, &issued, server)?;
    tracing::info!(node = %node_name, not_after = %renewed.not_after, "rotated the client certificate");
    rotating.swap(server, renewed).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_falls_between_70_and_84_percent() {
        let from: k8s_openapi::jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let to: k8s_openapi::jiff::Timestamp = "2026-01-01T00:01:40Z".parse().unwrap();
        let at = |r| {
            rotation_deadline(from, to, from, r)
                .duration_since(from)
                .as_secs_f64()
        };
        assert!((at(0.0) - 70.0).abs() < 0.01);
        assert!((at(1.0) - 84.0).abs() < 0.01);
        assert!((at(0.5) - 77.0).abs() < 0.01);
        assert!((at(7.0) - 84.0).abs() < 0.01, "jitter is clamped");
        // A backdated certificate taken into use later: counted from then, never past expiry.
        let since: k8s_openapi::jiff::Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let late = rotation_deadline(from, to, since, 0.0)
            .duration_since(since)
            .as_secs_f64();
        assert!((late - 28.0).abs() < 0.01, "{late}");
    }
}
