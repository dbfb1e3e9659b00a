//! The CSR signing controller, as upstream's `pkg/controller/certificates/signer`: an
//! approved request (not denied, not failed, without a certificate yet) for one of the
//! `kubernetes.io` signers pernode runs is signed with the cluster CA
//! ([`pernode_auth::pki::ClusterCa::sign_request`]) and its certificate written through
//! `/status`. A request the signer cannot honour (the signer's checks of its subject, names
//! and usages fail) gets a `Failed` condition instead (reason `SignerValidationFailure`);
//! requests for other signers are someone else's.
//!
//! The certificate lasts the request's `spec.expirationSeconds`, at most
//! `--cluster-signing-duration` (a year by default) and at least ten minutes; a signing
//! duration shorter than that is honoured as it is (upstream's `duration`).
//!
//! ```no_run
//! # async fn demo(client: kube::Client, ca: pernode_auth::pki::ClusterCa) -> Result<(), pernode_controllers::csr::Error> {
//! let options = pernode_controllers::csr_signing::SignerOptions::new(std::sync::Arc::new(ca));
//! pernode_controllers::csr_signing::run(client, options).await
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use pernode_auth::csr::{
    CertificateRequest, KUBE_APISERVER_CLIENT, KUBE_APISERVER_CLIENT_KUBELET, KUBELET_SERVING,
};
use pernode_auth::pki::ClusterCa;
use tracing::info;

use crate::csr::{self, Handler, SyncError};

/// kube-controller-manager's default `--cluster-signing-duration`: a year.
pub const DEFAULT_SIGNING_DURATION: Duration = Duration::from_secs(8760 * 3600);
/// The shortest certificate a request's `expirationSeconds` gets (twice the backdate).
pub const MINIMUM_REQUESTED_DURATION: Duration = Duration::from_secs(10 * 60);

/// How the signer signs.
#[derive(Clone, Debug)]
pub struct SignerOptions {
    /// The CA that signs (`--cluster-signing-cert-file`, `--cluster-signing-key-file`).
    pub ca: Arc<ClusterCa>,
    /// The longest certificate it issues (`--cluster-signing-duration`).
    pub signing_duration: Duration,
}

impl SignerOptions {
    /// Signing with `ca` for upstream's default duration.
    pub fn new(ca: Arc<ClusterCa>) -> SignerOptions {
        SignerOptions {
            ca,
            signing_duration: DEFAULT_SIGNING_DURATION,
        }
    }
}

/// Upstream's `duration`: the request's `expirationSeconds` when it is shorter than the
/// signing duration, but not under ten minutes; the signing duration otherwise.
pub fn duration(signing_duration: Duration, expiration_seconds: Option<i32>) -> Duration {
    let Some(seconds) = expiration_seconds else {
        return signing_duration;
    };
    let requested = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    if requested > signing_duration {
        signing_duration
    } else if requested < MINIMUM_REQUESTED_DURATION {
        MINIMUM_REQUESTED_DURATION
    } else {
        requested
    }
}

/// What the signer does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not approved, denied, failed, or another signer's.
    Ignore,
    /// The signer's checks refuse it: a Failed condition with this message.
    Fail(String),
    /// Sign it for this long.
    Sign(Duration),
}

/// The signer's decision on `csr` (without a certificate), whose request is `request`.
pub fn decide(
    csr: &CertificateSigningRequest,
    request: &CertificateRequest,
    signing_duration: Duration,
) -> Decision {
    if !csr::is_approved(csr) || csr::has_true_condition(csr, "Failed") {
        return Decision::Ignore;
    }
    let usages = csr::usages(csr);
    // `getCSRVerificationFuncForSignerName`.
    let checked = match csr.spec.signer_name.as_str() {
        KUBE_APISERVER_CLIENT_KUBELET => {
            pernode_auth::csr::validate_kubelet_client(request, usages)
        }
        KUBE_APISERVER_CLIENT => pernode_auth::csr::validate_kube_apiserver_client(usages),
        KUBELET_SERVING => pernode_auth::csr::validate_kubelet_serving(request, usages),
        _ => return Decision::Ignore,
    };
    match checked {
        Ok(()) => Decision::Sign(duration(signing_duration, csr.spec.expiration_seconds)),
        Err(message) => Decision::Fail(message),
    }
}

/// Appends a Failed condition (reason `SignerValidationFailure`).
pub fn fail(csr: &mut CertificateSigningRequest, message: &str) {
    let now = k8s_openapi::jiff::Timestamp::now();
    let now = k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    csr.status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: "Failed".into(),
            status: "True".into(),
            reason: Some("SignerValidationFailure".into()),
            message: Some(message.into()),
            last_update_time: Some(Time(now)),
            ..Default::default()
        });
}

struct Signer {
    api: Api<CertificateSigningRequest>,
    options: SignerOptions,
}

/// Runs the signer until an unrecoverable error.
pub async fn run(client: kube::Client, options: SignerOptions) -> Result<(), csr::Error> {
    let api = Api::all(client);
    let signer = Signer {
        api: api.clone(),
        options,
    };
    csr::run(api, "csrsigning", signer).await
}

impl Handler for Signer {
    fn handle(&self, csr: CertificateSigningRequest) -> BoxFuture<'_, Result<(), SyncError>> {
        Box::pin(self.sync(csr))
    }
}

impl Signer {
    async fn sync(&self, mut csr: CertificateSigningRequest) -> Result<(), SyncError> {
        // Cheap checks before the request is parsed.
        if !csr::is_approved(&csr) || csr::has_true_condition(&csr, "Failed") {
            return Ok(());
        }
        let request = csr::parsed(&csr)?;
        let name = csr::name(&csr).to_string();
        match decide(&csr, &request, self.options.signing_duration) {
            Decision::Ignore => return Ok(()),
            Decision::Fail(message) => {
                info!(csr = %name, %message, "refused to sign certificate signing request");
                fail(&mut csr, &message);
            }
            Decision::Sign(ttl) => {
                match self
                    .options
                    .ca
                    .sign_request(&request, csr::usages(&csr), ttl)
                {
                    Ok(certificate) => {
                        csr.status.get_or_insert_with(Default::default).certificate =
                            Some(ByteString(certificate.into_bytes()));
                        info!(csr = %name, ?ttl, "signed certificate signing request");
                    }
                    // A subject pernode cannot write is refused for good; anything else (the
                    // CA) may pass later, as upstream retries.
                    Err(pernode_auth::pki::PkiError::Unsupported(message)) => {
                        fail(&mut csr, &message)
                    }
                    Err(e) => {
                        return Err(SyncError::Failed(format!("error auto signing csr: {e}")));
                    }
                }
            }
        }
        self.api
            .replace_status(&name, &PostParams::default(), &csr)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::tests::{csr, request_pem};

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn the_duration_is_the_shorter_of_request_and_flag_but_ten_minutes_at_least() {
        let year = DEFAULT_SIGNING_DURATION;
        assert_eq!(duration(year, None), year);
        assert_eq!(duration(year, Some(3600)), HOUR);
        assert_eq!(duration(HOUR, Some(86_400)), HOUR);
        assert_eq!(duration(year, Some(60)), MINIMUM_REQUESTED_DURATION);
        // A short signing duration (renewal tests use a minute) is honoured as it is.
        let minute = Duration::from_secs(60);
        assert_eq!(duration(minute, None), minute);
        assert_eq!(duration(minute, Some(600)), minute);
    }

    fn decision(signer: &str, pem: Vec<u8>, usages: &[&str], conditions: &[&str]) -> Decision {
        let c = csr(pem, signer, "u", usages, conditions);
        let request = crate::csr::parsed(&c).expect("parsed");
        decide(&c, &request, HOUR)
    }

    #[test]
    fn approved_requests_of_our_signers_are_signed_or_failed() {
        let node = || request_pem("system:node:a", "system:nodes", &[]);
        let client = ["digital signature", "key encipherment", "client auth"];
        let kubelet = KUBE_APISERVER_CLIENT_KUBELET;
        assert_eq!(
            decision(kubelet, node(), &client, &["Approved"]),
            Decision::Sign(HOUR)
        );
        // Pending, denied, failed: nothing.
        assert_eq!(decision(kubelet, node(), &client, &[]), Decision::Ignore);
        assert_eq!(
            decision(kubelet, node(), &client, &["Approved", "Denied"]),
            Decision::Ignore
        );
        assert_eq!(
            decision(kubelet, node(), &client, &["Approved", "Failed"]),
            Decision::Ignore
        );
        assert_eq!(
            decision("example.com/mine", node(), &client, &["Approved"]),
            Decision::Ignore
        );
        // The kubelet signer's checks: a user's request fails.
        assert_eq!(
            decision(
                kubelet,
                request_pem("jane", "dev", &[]),
                &client,
                &["Approved"]
            ),
            Decision::Fail("subject organization is not system:nodes".into())
        );
        // The client signer takes any subject, but client usages only.
        let user = || request_pem("jane", "dev", &[]);
        assert_eq!(
            decision(KUBE_APISERVER_CLIENT, user(), &client, &["Approved"]),
            Decision::Sign(HOUR)
        );
        assert_eq!(
            decision(
                KUBE_APISERVER_CLIENT,
                user(),
                &["client auth", "server auth"],
                &["Approved"]
            ),
            Decision::Fail("invalid usage for client certificate: server auth".into())
        );
        // Serving certificates need a name.
        let serving = ["digital signature", "key encipherment", "server auth"];
        assert_eq!(
            decision(
                KUBELET_SERVING,
                request_pem("system:node:a", "system:nodes", &["a.local"]),
                &serving,
                &["Approved"]
            ),
            Decision::Sign(HOUR)
        );
        assert_eq!(
            decision(KUBELET_SERVING, node(), &serving, &["Approved"]),
            Decision::Fail("DNS or IP subjectAltName is required".into())
        );
    }

    #[test]
    fn a_failure_is_upstreams_condition() {
        let mut c = csr(
            request_pem("jane", "dev", &[]),
            KUBE_APISERVER_CLIENT_KUBELET,
            "u",
            &[],
            &["Approved"],
        );
        fail(&mut c, "subject organization is not system:nodes");
        let conditions = c.status.and_then(|s| s.conditions).expect("conditions");
        let failed = &conditions[1];
        assert_eq!(failed.type_, "Failed");
        assert_eq!(failed.status, "True");
        assert_eq!(failed.reason.as_deref(), Some("SignerValidationFailure"));
        assert!(failed.last_update_time.is_some());
    }
}
