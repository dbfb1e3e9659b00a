//! kubeadm's token discovery, both halves: how a joining node that holds only a bootstrap
//! token and a CA pin learns the cluster's CA without trusting the network.
//!
//! The server publishes `kube-public/cluster-info`, a ConfigMap whose `kubeconfig` names the
//! server and its CA, readable anonymously. The bootstrap signer adds one detached JWS per
//! signing-enabled bootstrap token (`jws-kubeconfig-<id>`, HS256 keyed by the token's
//! secret), which proves to a token holder that whoever served the ConfigMap knows the token
//! ([`detached_signature`], [`signature_is_valid`], as upstream's
//! `k8s.io/cluster-bootstrap/token/jws`). The joining node also checks the CA against the
//! `--ca-cert-hash` it was given ([`ca_cert_hash`]: `sha256:` and the hex SHA-256 of the CA
//! certificate's DER SubjectPublicKeyInfo, as kubeadm's `pubkeypin`).
//!
//! ```
//! use pernode_auth::discovery::{detached_signature, signature_is_valid};
//! let jws = detached_signature("content", "abcdef", "0123456789abcdef");
//! assert!(signature_is_valid(&jws, "content", "abcdef", "0123456789abcdef"));
//! assert!(!signature_is_valid(&jws, "changed", "abcdef", "0123456789abcdef"));
//! ```

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The namespace of the published cluster information.
pub const NAMESPACE: &str = "kube-public";
/// The ConfigMap's name.
pub const CONFIG_MAP: &str = "cluster-info";
/// The key holding the kubeconfig (server and CA, no credentials).
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// Prefix of the keys holding the signatures, followed by the token id.
pub const JWS_KEY_PREFIX: &str = "jws-kubeconfig-";
/// The path anonymous clients read it at.
pub const PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
/// The prefix of a CA pin.
pub const HASH_PREFIX: &str = "sha256:";

/// The data key holding token `id`'s signature.
pub fn jws_key(id: &str) -> String {
    format!("{JWS_KEY_PREFIX}{id}")
}

/// The compact JWS of `content` with its payload left out (`header..signature`), HS256 keyed
/// by `token_secret` with `kid` the token id: upstream's `ComputeDetachedSignature` (go-jose
/// writes the protected header's members sorted, so the bytes match).
pub fn detached_signature(content: &str, token_id: &str, token_secret: &str) -> String {
    let header = serde_json::json!({"alg": "HS256", "kid": token_id}).to_string();
    let header = URL_SAFE_NO_PAD.encode(header);
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(content));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token_secret.as_bytes());
    let tag = ring::hmac::sign(&key, signing_input.as_bytes());
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Whether `jws` is the detached signature of `content` by the token: recomputed and
/// compared, as upstream's `DetachedTokenIsValid`.
pub fn signature_is_valid(jws: &str, content: &str, token_id: &str, token_secret: &str) -> bool {
    let expected = detached_signature(content, token_id, token_secret);
    crate::bootstrap_token::equal_in_constant_time(expected.as_bytes(), jws.as_bytes())
}

/// Why a CA certificate could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("no PEM certificate in the CA data")]
    NoCertificate,
    #[error("the CA certificate does not parse: {0}")]
    Parse(String),
}

/// The pin of the first certificate in `ca_pem`: `sha256:<hex of SHA-256 of its DER
/// SubjectPublicKeyInfo>`, as `kubeadm token create --print-join-command` prints.
pub fn ca_cert_hash(ca_pem: &str) -> Result<String, PinError> {
    ca_cert_hash_of_der(&first_certificate(ca_pem)?)
}

/// [`ca_cert_hash`] of one DER certificate.
pub fn ca_cert_hash_of_der(der: &[u8]) -> Result<String, PinError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| PinError::Parse(e.to_string()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{HASH_PREFIX}{hex}"))
}

/// Whether `ca_pem`'s first certificate matches one of `pins` (compared case-insensitively,
/// as kubeadm's pin set).
pub fn ca_matches(ca_pem: &str, pins: &[String]) -> Result<bool, PinError> {
    let hash = ca_cert_hash(ca_pem)?;
    Ok(pins.iter().any(|p| p.eq_ignore_ascii_case(&hash)))
}

/// The first `CERTIFICATE` block, read as [`crate::tls::certificates`] reads them.
fn first_certificate(pem: &str) -> Result<Vec<u8>, PinError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    match CertificateDer::pem_slice_iter(pem.as_bytes()).next() {
        None => Err(PinError::NoCertificate),
        Some(Err(e)) => Err(PinError::Parse(e.to_string())),
        Some(Ok(der)) => Ok(der.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_content_token_and_secret() {
        let jws = detached_signature("kubeconfig", "abcdef", "0123456789abcdef");
        let parts: Vec<&str> = jws.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[1].is_empty(), "the payload is detached: {jws}");
        let header = URL_SAFE_NO_PAD.decode(parts[0]).unwrap();
        assert_eq!(header, br#"{"alg":"HS256","kid":"abcdef"}"#);
        assert!(signature_is_valid(
            &jws,
            "kubeconfig",
            "abcdef",
            "0123456789abcdef"
        ));
        assert!(!signature_is_valid(
            &jws,
            "kubeconfig",
            "abcdeg",
            "0123456789abcdef"
        ));
        assert!(!signature_is_valid(
            &jws,
            "kubeconfig",
            "abcdef",
            "0123456789abcdeg"
        ));
        assert!(!signature_is_valid(
            &jws,
            "kubeconfig2",
            "abcdef",
            "0123456789abcdef"
        ));
    }

    #[test]
    fn signatures_match_upstreams_test_vectors() {
        // k8s.io/cluster-bootstrap/token/jws's TestComputeDetachedSignature.
        let content = "Hello from the other side. I must have called a thousand times.";
        let secret = "my voice is my passcode";
        assert_eq!(
            detached_signature(content, "joshua", secret),
            "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8"
        );
        assert_eq!(
            detached_signature("", "joshua", secret),
            "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..7Ui1ALizW4jXphVUB7xUqC9vLYLL9RZeOFfVLoB7Tgk"
        );
    }

    #[test]
    fn pins_are_of_the_public_key() {
        let ca = crate::pki::ClusterCa::generate().unwrap();
        let hash = ca_cert_hash(&ca.cert_pem).unwrap();
        assert!(
            hash.starts_with("sha256:") && hash.len() == 7 + 64,
            "{hash}"
        );
        assert!(
            ca_matches(
                &ca.cert_pem,
                &[hash.to_uppercase().replace("SHA256", "sha256")]
            )
            .unwrap()
        );
        let other = crate::pki::ClusterCa::generate().unwrap();
        assert!(!ca_matches(&other.cert_pem, &[hash]).unwrap());
        assert!(matches!(ca_cert_hash("junk"), Err(PinError::NoCertificate)));
    }
}
