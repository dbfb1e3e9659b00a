//! Requesting the node's client certificate, as the kubelet's `requestNodeCertificate`: a new
//! ECDSA P-256 key, a CSR for CN `system:node:<name>`, O `system:nodes`, submitted as a
//! CertificateSigningRequest for the `kubernetes.io/kube-apiserver-client-kubelet` signer
//! with usages `digital signature` and `client auth`, named after a digest of its key and
//! subject (a retry finds its own request instead of making another); then waiting until it
//! is signed, or failing when it is denied or fails.

use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

use super::JoinError;
use pernode_auth::pki::CertAndKey;

/// The signer of kubelets' client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The usages requested for an ECDSA key (the kubelet adds `key encipherment` for RSA only).
pub const USAGES: [&str; 2] = ["digital signature", "client auth"];

/// A new key and the PEM CSR for node `node_name`'s client certificate.
pub fn make_request(node_name: &str) -> Result<(rcgen::KeyPair, String), JoinError> {
    let key = rcgen::KeyPair::generate()
        .map_err(|e| JoinError::Request(format!("generating a key: {e}")))?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::OrganizationName,
        pernode_auth::user::NODES_GROUP,
    );
    dn.push(
        rcgen::DnType::CommonName,
        format!("{}{node_name}", pernode_auth::user::NODE_USER_PREFIX),
    );
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| JoinError::Request(format!("making the CSR: {e}")))?;
    Ok((key, csr))
}

/// `node-csr-` and the URL-safe base64 SHA-256 of the key, the subject and the usages, as the
/// kubelet's `digestedName`.
pub fn digested_name(public_key_der: &[u8], node_name: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        public_key_der,
        node_name.as_bytes(),
        pernode_auth::user::NODES_GROUP.as_bytes(),
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    for usage in USAGES {
        ctx.update(usage.as_bytes());
    }
    format!(
        "node-csr-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.finish().as_ref())
    )
}

/// Submits a request for `node_name`'s client certificate with `client` (the bootstrap
/// token's, or the current certificate's when renewing) and waits for the certificate.
pub async fn request(client: &kube::Client, node_name: &str) -> Result<CertAndKey, JoinError> {
    let (key, csr_pem) = make_request(node_name)?;
    let name = digested_name(
        &rcgen::PublicKeyData::subject_public_key_info(&key),
        node_name,
    );
    let csr: CertificateSigningRequest = serde_json::from_value(serde_json::json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(&csr_pem),
            "signerName": KUBELET_CLIENT_SIGNER,
            "usages": USAGES,
        },
    }))
    .map_err(|e| JoinError::Request(e.to_string()))?;
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    match api.create(&PostParams::default(), &csr).await {
        Ok(_) => {}
        // Our own digest: the same key's earlier attempt.
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(csr = %name, "waiting for the node's client certificate");
    let cert_pem = wait_for_certificate(&api, &name).await?;
    Ok(CertAndKey {
        cert_pem,
        key_pem: key.serialize_pem(),
    })
}

/// The issued certificate of CSR `name`, once there is one.
async fn wait_for_certificate(
    api: &Api<CertificateSigningRequest>,
    name: &str,
) -> Result<String, JoinError> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let stream = watcher(api.clone(), config)
        .default_backoff()
        .applied_objects();
    futures::pin_mut!(stream);
    let started = tokio::time::Instant::now();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), stream.next()).await;
        let csr = match next {
            Err(_) => {
                tracing::info!(csr = %name, waited = ?started.elapsed(), "still waiting for approval");
                continue;
            }
            Ok(None) => return Err(JoinError::Request("the watch of the request ended".into())),
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "watching the certificate request");
                continue;
            }
            Ok(Some(Ok(csr))) => csr,
        };
        if let Some(done) = outcome(&csr)? {
            return Ok(done);
        }
    }
}

/// The certificate of `csr` if it has been issued, an error if it was denied or failed.
pub fn outcome(csr: &CertificateSigningRequest) -> Result<Option<String>, JoinError> {
    let status = csr.status.as_ref();
    for condition in status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
    {
        if condition.status == "True" && matches!(condition.type_.as_str(), "Denied" | "Failed") {
            return Err(JoinError::Request(format!(
                "certificate signing request {} was {}: {} {}",
                csr.metadata.name.as_deref().unwrap_or_default(),
                condition.type_.to_lowercase(),
                condition.reason.as_deref().unwrap_or_default(),
                condition.message.as_deref().unwrap_or_default(),
            )));
        }
    }
    match status.and_then(|s| s.certificate.as_ref()) {
        Some(cert) if !cert.0.is_empty() => String::from_utf8(cert.0.clone())
            .map(Some)
            .map_err(|_| JoinError::Request("the issued certificate is not PEM".into())),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_node_in_the_nodes_group() {
        let (key, pem) = make_request("web-1").expect("csr");
        let parsed = rcgen::CertificateSigningRequestParams::from_pem(&pem).expect("parses");
        let dn: Vec<String> = parsed
            .params
            .distinguished_name
            .iter()
            .map(|(t, v)| format!("{t:?}={v:?}"))
            .collect();
        assert!(dn.iter().any(|d| d.contains("system:node:web-1")), "{dn:?}");
        assert!(dn.iter().any(|d| d.contains("system:nodes")), "{dn:?}");
        let name = digested_name(
            &rcgen::PublicKeyData::subject_public_key_info(&key),
            "web-1",
        );
        assert!(name.starts_with("node-csr-"));
        assert_eq!(
            name,
            digested_name(
                &rcgen::PublicKeyData::subject_public_key_info(&key),
                "web-1"
            )
        );
        assert_ne!(
            name,
            digested_name(
                &rcgen::PublicKeyData::subject_public_key_info(&key),
                "web-2"
            )
        );
    }

    #[test]
    fn denial_is_an_error_and_a_certificate_the_end() {
        let mut csr: CertificateSigningRequest = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node-csr-x"},
            "spec": {"request": "", "signerName": KUBELET_CLIENT_SIGNER},
        }))
        .expect("csr");
        assert!(outcome(&csr).expect("pending").is_none());
        csr.status = Some(
            serde_json::from_value(serde_json::json!({
                "conditions": [{"type": "Denied", "status": "True", "reason": "No", "message": "not you"}],
            }))
            .expect("status"),
        );
        assert!(
            outcome(&csr)
                .unwrap_err()
                .to_string()
                .contains("was denied: No not you")
        );
        csr.status = Some(
            serde_json::from_value(serde_json::json!({
                "conditions": [{"type": "Approved", "status": "True"}],
                "certificate": base64::engine::general_purpose::STANDARD.encode("PEM"),
            }))
            .expect("status"),
        );
        assert_eq!(outcome(&csr).expect("issued").as_deref(), Some("PEM"));
    }
}
