//! The API server's TLS configuration (rustls): its serving certificate, and client
//! certificates requested but not required, as kube-apiserver's `tls.RequestClientCert`.
//!
//! A client certificate is checked after the handshake, not during it ([`ClientCertCheck`]):
//! a client presenting an expired or wrongly signed certificate gets upstream's 401 on its
//! requests instead of a TLS alert, and a client presenting none may still authenticate with
//! a bearer token. The handshake still proves the client holds the certificate's key.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use crate::pki::PkiError;
use crate::user::UserInfo;

/// Certificates from PEM text (every `CERTIFICATE` block).
pub fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Invalid(format!("reading certificates: {e}")))?;
    if certs.is_empty() {
        return Err(PkiError::Invalid("no certificate in the PEM text".into()));
    }
    Ok(certs)
}

/// The private key of PEM text (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PkiError::Invalid(format!("reading the private key: {e}")))
}

/// Checks client certificates against the client CA(s) once the handshake is done.
#[derive(Debug, Clone)]
pub struct ClientCertCheck {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl ClientCertCheck {
    /// The user a connection's certificate chain names, if the chain is valid now:
    /// `Ok(None)` for a connection without a certificate, `Err` for an invalid one.
    pub fn user(&self, chain: Option<&[CertificateDer<'_>]>) -> Result<Option<UserInfo>, String> {
        let Some((end_entity, intermediates)) = chain.and_then(|c| c.split_first()) else {
            return Ok(None);
        };
        self.verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map_err(|e| format!("verifying the client certificate: {e}"))?;
        crate::x509::user_of_der(end_entity).map(Some)
    }
}

/// Accepts any client certificate during the handshake (the signatures proving the client
/// holds its key are still verified); [`ClientCertCheck`] judges it afterwards.
#[derive(Debug)]
struct DeferredClientVerifier(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for DeferredClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What a TLS listener needs: the rustls configuration and the client-certificate check.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    pub client_certs: ClientCertCheck,
}

/// The server configuration for a serving certificate chain and key (PEM), trusting client
/// certificates signed by any of `client_ca_pems`. Offers HTTP/2 and HTTP/1.1 (ALPN).
pub fn server_tls(
    cert_pem: &str,
    key_pem: &str,
    client_ca_pems: &[&str],
) -> Result<ServerTls, PkiError> {
    let chain = certificates(cert_pem)?;
    let key = private_key(key_pem)?;
    let mut roots = RootCertStore::empty();
    for pem in client_ca_pems {
        for cert in certificates(pem)? {
            roots
                .add(cert)
                .map_err(|e| PkiError::Invalid(format!("adding a client CA: {e}")))?;
        }
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .allow_unauthenticated()
        .build()
        .map_err(|e| PkiError::Invalid(format!("building the client verifier: {e}")))?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(Arc::new(DeferredClientVerifier(verifier.clone())))
        .with_single_cert(chain, key)
        .map_err(|e| PkiError::Invalid(format!("using the serving certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        client_certs: ClientCertCheck { verifier },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ClusterCa;

    #[test]
    fn client_certificates_are_judged_after_the_handshake() {
        let ca = ClusterCa::generate().unwrap();
        let serving = ca.issue_serving(&["localhost".into()]).unwrap();
        let tls = server_tls(&serving.cert_pem, &serving.key_pem, &[&ca.cert_pem]).unwrap();
        let admin = ca
            .issue_client("system:admin", &["system:masters"], 1)
            .unwrap();
        let chain = certificates(&admin.cert_pem).unwrap();
        let user = tls.client_certs.user(Some(&chain)).unwrap().unwrap();
        assert_eq!(user.name, "system:admin");
        assert_eq!(user.groups, ["system:masters"]);
        assert_eq!(tls.client_certs.user(None).unwrap(), None);
        // Signed by another CA: refused.
        let other = ClusterCa::generate().unwrap();
        let stranger = other
            .issue_client("system:admin", &["system:masters"], 1)
            .unwrap();
        let chain = certificates(&stranger.cert_pem).unwrap();
        assert!(tls.client_certs.user(Some(&chain)).is_err());
    }

    #[test]
    fn garbage_pem_is_an_error() {
        assert!(certificates("nothing here").is_err());
        let ca = ClusterCa::generate().unwrap();
        assert!(server_tls(&ca.cert_pem, "not a key", &[&ca.cert_pem]).is_err());
    }
}
