//! The certificates admission plugins of kube-apiserver (plugin/pkg/admission/certificates),
//! validating admission on CertificateSigningRequests:
//!
//! - `CertificateApproval`: changing a request's conditions through `approval` needs the verb
//!   `approve` on the `signers` resource of `certificates.k8s.io`, named after the request's
//!   signer (or `<domain>/*`);
//! - `CertificateSigning`: changing the certificate or the conditions through `status` needs
//!   the verb `sign` on that signer;
//! - `CertificateSubjectRestriction`: nobody creates a request of the
//!   `kubernetes.io/kube-apiserver-client` signer for the `system:masters` group.
//!
//! The signer name is the stored request's, so a write cannot name another signer to pass.

use pernode_auth::authorizer::{Attributes, Authorizer, Decision};
use pernode_auth::csr::KUBE_APISERVER_CLIENT;
use pernode_auth::user::{SYSTEM_PRIVILEGED_GROUP, UserInfo};
use pernode_resources::ResourceInfo;
use serde_json::Value;

use super::forbidden;
use crate::error::ApiError;
use crate::target::Target;

fn is_csr(info: &ResourceInfo) -> bool {
    info.group == pernode_resources::CERTIFICATES
        && info.plural == "certificatesigningrequests"
        && info.custom.is_none()
}

fn signer_of(csr: &Value) -> &str {
    csr.pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `IsAuthorizedForSignerName`: may `user` `verb` the signer, by its name or its domain's
/// wildcard (`kubernetes.io/*`)?
pub fn authorized_for_signer(
    authorizer: &dyn Authorizer,
    user: &UserInfo,
    verb: &str,
    signer: &str,
) -> bool {
    let allowed = |name: &str| {
        let attrs = Attributes::resource(
            user,
            verb,
            "",
            pernode_resources::CERTIFICATES,
            "*",
            "signers",
            "",
            name,
        );
        authorizer.authorize(&attrs) == Decision::Allow
    };
    let domain = signer.split('/').next().unwrap_or("");
    allowed(signer) || allowed(&format!("{domain}/*"))
}

/// The plugins of an update of `target` from `old` to `new` (as the strategy prepared it).
pub fn admit_update(
    authorizer: &dyn Authorizer,
    user: &UserInfo,
    target: &Target,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    if !is_csr(target.info) {
        return Ok(());
    }
    let signer = signer_of(old);
    match target.subresource.as_deref() {
        Some("approval") if !authorized_for_signer(authorizer, user, "approve", signer) => {
            Err(forbidden(
                target.info,
                old,
                &format!("user not permitted to approve requests with signerName {signer:?}"),
            ))
        }
        Some("status") => {
            let changed = |pointer: &str| old.pointer(pointer) != new.pointer(pointer);
            if (changed("/status/certificate") || changed("/status/conditions"))
                && !authorized_for_signer(authorizer, user, "sign", signer)
            {
                return Err(forbidden(
                    target.info,
                    old,
                    &format!("user not permitted to sign requests with signerName {signer:?}"),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The plugins of a create: `CertificateSubjectRestriction`.
pub fn admit_create(info: &ResourceInfo, csr: &Value) -> Result<(), ApiError> {
    if !is_csr(info) || signer_of(csr) != KUBE_APISERVER_CLIENT {
        return Ok(());
    }
    let request = request_bytes(csr);
    let parsed = pernode_auth::csr::parse(&request)
        .map_err(|e| forbidden(info, csr, &format!("failed to parse CSR: {e}")))?;
    if parsed
        .subject
        .organization
        .iter()
        .any(|o| o == SYSTEM_PRIVILEGED_GROUP)
    {
        return Err(forbidden(
            info,
            csr,
            &format!(
                "use of {KUBE_APISERVER_CLIENT} signer with {SYSTEM_PRIVILEGED_GROUP} group is not allowed"
            ),
        ));
    }
    Ok(())
}

/// `spec.request` decoded (the stored form is base64).
fn request_bytes(csr: &Value) -> Vec<u8> {
    use base64::Engine;
    let encoded = csr
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_default()
}
