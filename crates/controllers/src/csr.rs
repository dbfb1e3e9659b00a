//! What the certificate controllers share, as upstream's `pkg/controller/certificates`
//! (`certificate_controller.go`, `certificate_controller_utils.go`): one watch of
//! CertificateSigningRequests into a cache, a work queue of request names with upstream's
//! rate limiter (200 ms doubling to 1000 s per request, 10/s overall), and a handler that
//! sees each request still without a certificate, whenever it is added or changes. A handler
//! error retries the request with backoff: an approver waits for the permission that may be
//! granted later, a signer for the API.
//!
//! The condition helpers read the request as upstream's do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tracing::debug;

use crate::workqueue::WorkQueue;

/// Errors of the certificate controllers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed in a way retrying will not fix.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A background task stopped unexpectedly.
    #[error("certificate controller task failed: {0}")]
    Task(String),
}

/// Why one request was not handled this time; it is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Expected to pass in time (upstream's `IgnorableError`): logged quietly.
    #[error("{0}")]
    Ignorable(String),
    #[error("{0}")]
    Failed(String),
}

/// A certificate controller's decision on one request without a certificate.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(&self, csr: CertificateSigningRequest) -> BoxFuture<'_, Result<(), SyncError>>;
}

struct Controller<H> {
    name: &'static str,
    cache: Mutex<BTreeMap<String, Arc<CertificateSigningRequest>>>,
    queue: WorkQueue<String>,
    handler: H,
}

/// Runs `handler` on the requests `api` lists until an unrecoverable error; `name` is the
/// controller's in the logs.
pub(crate) async fn run<H: Handler>(
    api: Api<CertificateSigningRequest>,
    name: &'static str,
    handler: H,
) -> Result<(), Error> {
    let c = Arc::new(Controller {
        name,
        cache: Mutex::new(BTreeMap::new()),
        queue: WorkQueue::with_bucket(
            Duration::from_millis(200),
            Duration::from_secs(1000),
            10.0,
            100.0,
        )
        // Upstream's certificate controllers (approving, signing) all name their queue so.
        .named("certificate"),
        handler,
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(c.clone().watch(api));
    tasks.spawn(c.clone().worker());
    let first = tasks.join_next().await;
    c.queue.shut_down();
    tasks.abort_all();
    match first {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Error::Task(e.to_string())),
        None => Ok(()),
    }
}

impl<H: Handler> Controller<H> {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Arc<CertificateSigningRequest>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn store(&self, csr: CertificateSigningRequest) {
        let name = csr.metadata.name.clone().unwrap_or_default();
        self.lock().insert(name.clone(), Arc::new(csr));
        self.queue.add(name);
    }

    async fn watch(self: Arc<Self>, api: Api<CertificateSigningRequest>) -> Result<(), Error> {
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut listed = Vec::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => listed.clear(),
                Ok(Event::InitApply(csr)) => listed.push(csr),
                Ok(Event::InitDone) => {
                    self.lock().clear();
                    for csr in listed.drain(..) {
                        self.store(csr);
                    }
                }
                Ok(Event::Apply(csr)) => self.store(csr),
                Ok(Event::Delete(csr)) => {
                    self.lock()
                        .remove(csr.metadata.name.as_deref().unwrap_or(""));
                }
                Err(e) => debug!(controller = self.name, error = %e, "watch interrupted; retrying"),
            }
        }
        Err(Error::Task(format!("{}: the watch ended", self.name)))
    }

    async fn worker(self: Arc<Self>) -> Result<(), Error> {
        while let Some(name) = self.queue.get().await {
            match self.sync(&name).await {
                Ok(()) => self.queue.forget(&name),
                Err(e) => {
                    match &e {
                        SyncError::Ignorable(_) => {
                            debug!(controller = self.name, csr = %name, error = %e, "retrying")
                        }
                        _ => {
                            tracing::warn!(controller = self.name, csr = %name, error = %e, "retrying")
                        }
                    }
                    self.queue.add_rate_limited(name.clone());
                }
            }
            self.queue.done(&name);
        }
        Ok(())
    }

    /// `syncFunc`: a request that is gone or already has its certificate needs nothing.
    async fn sync(&self, name: &str) -> Result<(), SyncError> {
        let Some(csr) = self.lock().get(name).cloned() else {
            return Ok(());
        };
        if !certificate(&csr).is_empty() {
            return Ok(());
        }
        self.handler
            .handle(CertificateSigningRequest::clone(&csr))
            .await
    }
}

/// The issued certificate (PEM), empty before.
pub(crate) fn certificate(csr: &CertificateSigningRequest) -> &[u8] {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .map_or(&[], |c| c.0.as_slice())
}

fn conditions(csr: &CertificateSigningRequest) -> impl Iterator<Item = (&str, &str)> {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str()))
}

/// `GetCertApprovalCondition`: whether the request has an Approved and a Denied condition.
pub(crate) fn approval(csr: &CertificateSigningRequest) -> (bool, bool) {
    let approved = conditions(csr).any(|(t, _)| t == "Approved");
    let denied = conditions(csr).any(|(t, _)| t == "Denied");
    (approved, denied)
}

/// `IsCertificateRequestApproved`: approved and not denied.
pub(crate) fn is_approved(csr: &CertificateSigningRequest) -> bool {
    approval(csr) == (true, false)
}

/// `HasTrueCondition`: a condition of this type whose status is True (or unset).
pub(crate) fn has_true_condition(csr: &CertificateSigningRequest, condition: &str) -> bool {
    conditions(csr).any(|(t, s)| t == condition && (s.is_empty() || s == "True"))
}

/// The request's usages.
pub(crate) fn usages(csr: &CertificateSigningRequest) -> &[String] {
    csr.spec.usages.as_deref().unwrap_or(&[])
}

/// The request's name, for messages.
pub(crate) fn name(csr: &CertificateSigningRequest) -> &str {
    csr.metadata.name.as_deref().unwrap_or("")
}

/// The x509 request of `csr`, or upstream's error (`unable to parse csr ...`).
pub(crate) fn parsed(
    csr: &CertificateSigningRequest,
) -> Result<pernode_auth::csr::CertificateRequest, SyncError> {
    pernode_auth::csr::parse(&csr.spec.request.0)
        .map_err(|e| SyncError::Failed(format!("unable to parse csr {:?}: {e}", name(csr))))
}

#[cfg(test)]
pub(crate) mod tests {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestSpec,
        CertificateSigningRequestStatus,
    };

    use super::*;

    /// A PEM request for `cn` in `org` (none when empty), with `dns` names.
    pub(crate) fn request_pem(cn: &str, org: &str, dns: &[&str]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        if !org.is_empty() {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, org);
        }
        for name in dns {
            params
                .subject_alt_names
                .push(rcgen::SanType::DnsName((*name).try_into().expect("dns")));
        }
        params
            .serialize_request(&key)
            .expect("request")
            .pem()
            .expect("pem")
            .into_bytes()
    }

    /// A request by `username` for `signer` with `usages` and these conditions.
    pub(crate) fn csr(
        request: Vec<u8>,
        signer: &str,
        username: &str,
        usages: &[&str],
        conditions: &[&str],
    ) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: kube::api::ObjectMeta {
                name: Some("req".into()),
                ..Default::default()
            },
            spec: CertificateSigningRequestSpec {
                request: ByteString(request),
                signer_name: signer.into(),
                username: Some(username.into()),
                usages: Some(usages.iter().map(|u| u.to_string()).collect()),
                ..Default::default()
            },
            status: Some(CertificateSigningRequestStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|t| CertificateSigningRequestCondition {
                            type_: t.to_string(),
                            status: "True".into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                certificate: None,
            }),
        }
    }

    #[test]
    fn conditions_read_as_upstreams_helpers() {
        let request = request_pem("x", "", &[]);
        let approved = csr(request.clone(), "a/b", "u", &[], &["Approved"]);
        assert!(is_approved(&approved));
        let both = csr(request.clone(), "a/b", "u", &[], &["Approved", "Denied"]);
        assert!(!is_approved(&both));
        assert_eq!(approval(&both), (true, true));
        let failed = csr(request, "a/b", "u", &[], &["Approved", "Failed"]);
        assert!(has_true_condition(&failed, "Failed"));
        assert!(!has_true_condition(&approved, "Failed"));
    }
}
