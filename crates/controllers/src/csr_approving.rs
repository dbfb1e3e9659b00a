//! The CSR approving controller, as upstream's `pkg/controller/certificates/approver`
//! (`sarapprove.go`): a pending request for the `kubernetes.io/kube-apiserver-client-kubelet`
//! signer that is a node's client certificate (organization exactly `system:nodes`, common
//! name `system:node:<name>`, no subject alternative names, the client usages) is approved
//! (`Approved`, reason `AutoApproved`) when a SubjectAccessReview says its requester may
//! `create` `certificatesigningrequests/selfnodeclient` (a node renewing its own certificate:
//! the common name is the requester) or `certificatesigningrequests/nodeclient` (a bootstrap
//! token joining a node). Anything else is left to a person (`kubectl certificate approve`);
//! a recognized request whose requester lacks the permission is tried again with backoff, so
//! a binding made later still approves it.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_controllers::csr::Error> {
//! pernode_controllers::csr_approving::run(client).await
//! # }
//! ```

use futures::future::BoxFuture;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::api::{Api, PostParams};
use pernode_auth::csr::{CertificateRequest, KUBE_APISERVER_CLIENT_KUBELET};
use tracing::info;

use crate::csr::{self, Handler, SyncError};

/// A kind of request the approver knows, and the permission that approves it.
pub struct Recognizer {
    /// The subresource of `certificatesigningrequests` whose `create` approves it.
    pub subresource: &'static str,
    /// The approval's message.
    pub message: &'static str,
    recognize: fn(&CertificateSigningRequest, &CertificateRequest) -> bool,
}

/// `recognizers()`, in upstream's order.
pub static RECOGNIZERS: [Recognizer; 2] = [
    Recognizer {
        subresource: "selfnodeclient",
        message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
        recognize: is_self_node_client,
    },
    Recognizer {
        subresource: "nodeclient",
        message: "Auto approving kubelet client certificate after SubjectAccessReview.",
        recognize: is_node_client,
    },
];

/// `isNodeClientCert`: a node's client certificate from the kubelet client signer.
fn is_node_client(csr: &CertificateSigningRequest, request: &CertificateRequest) -> bool {
    csr.spec.signer_name == KUBE_APISERVER_CLIENT_KUBELET
        && pernode_auth::csr::validate_kubelet_client(request, csr::usages(csr)).is_ok()
}

/// `isSelfNodeClientCert`: one requested by the node it names.
fn is_self_node_client(csr: &CertificateSigningRequest, request: &CertificateRequest) -> bool {
    csr.spec.username.as_deref().unwrap_or("") == request.subject.common_name
        && is_node_client(csr, request)
}

/// The recognizers that know `csr`: the permissions to ask about, in order.
pub fn recognized(
    csr: &CertificateSigningRequest,
    request: &CertificateRequest,
) -> Vec<&'static Recognizer> {
    RECOGNIZERS
        .iter()
        .filter(|r| (r.recognize)(csr, request))
        .collect()
}

/// `appendApprovalCondition`.
pub fn approve(csr: &mut CertificateSigningRequest, message: &str) {
    csr.status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("AutoApproved".into()),
            message: Some(message.into()),
            ..Default::default()
        });
}

struct Approver {
    client: kube::Client,
}

/// Runs the approver until an unrecoverable error.
pub async fn run(client: kube::Client) -> Result<(), csr::Error> {
    let api = Api::all(client.clone());
    csr::run(api, "csrapproving", Approver { client }).await
}

impl Handler for Approver {
    fn handle(&self, csr: CertificateSigningRequest) -> BoxFuture<'_, Result<(), SyncError>> {
        Box::pin(self.sync(csr))
    }
}

impl Approver {
    async fn sync(&self, mut csr: CertificateSigningRequest) -> Result<(), SyncError> {
        let (approved, denied) = csr::approval(&csr);
        if approved || denied {
            return Ok(());
        }
        let request = csr::parsed(&csr)?;
        let mut tried = Vec::new();
        for recognizer in recognized(&csr, &request) {
            tried.push(recognizer.subresource);
            if !self.authorize(&csr, recognizer.subresource).await? {
                continue;
            }
            approve(&mut csr, recognizer.message);
            let name = csr::name(&csr).to_string();
            Api::<CertificateSigningRequest>::all(self.client.clone())
                .replace_subresource("approval", &name, &PostParams::default(), &csr)
                .await?;
            info!(csr = %name, as_ = recognizer.subresource, "approved certificate signing request");
            return Ok(());
        }
        if tried.is_empty() {
            return Ok(());
        }
        Err(SyncError::Ignorable(format!(
            "recognized csr {:?} as [{}] but subject access review was not approved",
            csr::name(&csr),
            tried.join(" ")
        )))
    }

    /// Whether the requester may `create` `certificatesigningrequests/<subresource>`.
    async fn authorize(
        &self,
        csr: &CertificateSigningRequest,
        subresource: &str,
    ) -> Result<bool, SyncError> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: csr.spec.username.clone(),
                uid: csr.spec.uid.clone(),
                groups: csr.spec.groups.clone(),
                extra: csr.spec.extra.clone(),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(pernode_auth::csr::GROUP.into()),
                    resource: Some("certificatesigningrequests".into()),
                    verb: Some("create".into()),
                    subresource: Some(subresource.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::tests::{csr, request_pem};

    const CLIENT: [&str; 3] = ["digital signature", "key encipherment", "client auth"];

    fn recognized_as(csr: &CertificateSigningRequest) -> Vec<&'static str> {
        let request = crate::csr::parsed(csr).expect("parsed");
        recognized(csr, &request)
            .into_iter()
            .map(|r| r.subresource)
            .collect()
    }

    #[test]
    fn node_client_requests_are_recognized_as_upstream() {
        let node = || request_pem("system:node:web-1", "system:nodes", &[]);
        let kubelet = KUBE_APISERVER_CLIENT_KUBELET;
        // A bootstrap token asks for a node: nodeclient.
        let joining = csr(node(), kubelet, "system:bootstrap:abcdef", &CLIENT, &[]);
        assert_eq!(recognized_as(&joining), ["nodeclient"]);
        // The node renews its own: selfnodeclient first.
        let renewing = csr(node(), kubelet, "system:node:web-1", &CLIENT, &[]);
        assert_eq!(recognized_as(&renewing), ["selfnodeclient", "nodeclient"]);
        // Without key encipherment (ECDSA keys) too.
        let ecdsa = csr(
            node(),
            kubelet,
            "system:node:web-1",
            &["digital signature", "client auth"],
            &[],
        );
        assert_eq!(recognized_as(&ecdsa), ["selfnodeclient", "nodeclient"]);
        // Anything else is nobody's to approve automatically.
        let not = |c: CertificateSigningRequest| assert!(recognized_as(&c).is_empty());
        not(csr(
            node(),
            pernode_auth::csr::KUBE_APISERVER_CLIENT,
            "u",
            &CLIENT,
            &[],
        ));
        not(csr(
            request_pem("system:node:web-1", "system:masters", &[]),
            kubelet,
            "u",
            &CLIENT,
            &[],
        ));
        not(csr(
            request_pem("system:node:web-1", "", &[]),
            kubelet,
            "u",
            &CLIENT,
            &[],
        ));
        not(csr(
            request_pem("jane", "system:nodes", &[]),
            kubelet,
            "u",
            &CLIENT,
            &[],
        ));
        not(csr(
            request_pem("system:node:web-1", "system:nodes", &["web-1.local"]),
            kubelet,
            "u",
            &CLIENT,
            &[],
        ));
        not(csr(
            node(),
            kubelet,
            "u",
            &["digital signature", "key encipherment", "server auth"],
            &[],
        ));
    }

    #[test]
    fn an_approval_is_upstreams_condition() {
        let mut c = csr(
            request_pem("system:node:a", "system:nodes", &[]),
            KUBE_APISERVER_CLIENT_KUBELET,
            "u",
            &CLIENT,
            &[],
        );
        approve(&mut c, RECOGNIZERS[1].message);
        let conditions = c.status.and_then(|s| s.conditions).expect("conditions");
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].type_, "Approved");
        assert_eq!(conditions[0].status, "True");
        assert_eq!(conditions[0].reason.as_deref(), Some("AutoApproved"));
        assert_eq!(
            conditions[0].message.as_deref(),
            Some("Auto approving kubelet client certificate after SubjectAccessReview.")
        );
    }
}
