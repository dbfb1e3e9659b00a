//! How the API server talks to kubelets: always over TLS, presenting its kubelet client
//! certificate (kube-apiserver's `--kubelet-client-certificate` and `--kubelet-client-key`),
//! which the kubelet authenticates and then authorizes with a SubjectAccessReview.
//!
//! The kubelet's serving certificate is checked against `--kubelet-certificate-authority`
//! when one is given, and not at all otherwise, as kube-apiserver does: a kubelet serves a
//! self-signed certificate unless it was given one. The handshake still proves the kubelet
//! holds the key of the certificate it presents.
//!
//! ```
//! use pernode_apiserver::node_proxy::KubeletClient;
//! use pernode_auth::pki::ClusterCa;
//!
//! let ca = ClusterCa::generate().expect("CA");
//! let cert = ca.issue_client("kube-apiserver-kubelet-client", &[], 365).expect("certificate");
//! let client = KubeletClient::new(Some((&cert.cert_pem, &cert.key_pem)), None).expect("TLS");
//! # let _ = client;
//! ```

use std::sync::Arc;

use pernode_auth::pki::PkiError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The user of the kubelet client certificate pernode generates (kubeadm's name for it).
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

/// The TLS client configuration for connections to kubelets.
#[derive(Clone)]
pub struct KubeletClient {
    connector: tokio_rustls::TlsConnector,
    presents_certificate: bool,
    verifies_kubelets: bool,
}

impl std::fmt::Debug for KubeletClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletClient")
            .field("presents_certificate", &self.presents_certificate)
            .field("verifies_kubelets", &self.verifies_kubelets)
            .finish()
    }
}

impl Default for KubeletClient {
    /// No client certificate (kubelets see an anonymous request) and no check of theirs.
    fn default() -> Self {
        KubeletClient::new(None, None).expect("a TLS client without certificates builds")
    }
}

impl KubeletClient {
    /// A client presenting `client` (certificate chain and key, PEM) and trusting kubelets'
    /// certificates signed by `kubelet_ca_pem`, or any certificate when it is `None`.
    pub fn new(
        client: Option<(&str, &str)>,
        kubelet_ca_pem: Option<&str>,
    ) -> Result<KubeletClient, PkiError> {
        let builder = rustls::ClientConfig::builder();
        let builder = match kubelet_ca_pem {
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in pernode_auth::tls::certificates(pem)? {
                    roots.add(cert).map_err(|e| {
                        PkiError::Invalid(format!("adding the kubelet certificate authority: {e}"))
                    })?;
                }
                builder.with_root_certificates(roots)
            }
            None => {
                let provider = builder.crypto_provider().clone();
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider)))
            }
        };
        let mut config = match client {
            Some((cert_pem, key_pem)) => {
                let chain = pernode_auth::tls::certificates(cert_pem)?;
                let key = pernode_auth::tls::private_key(key_pem)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    PkiError::Invalid(format!("using the kubelet client certificate: {e}"))
                })?
            }
            None => builder.with_no_client_auth(),
        };
        // The forwarded streams (exec's SPDY or WebSocket upgrades) are HTTP/1.1's.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            presents_certificate: client.is_some(),
            verifies_kubelets: kubelet_ca_pem.is_some(),
        })
    }

    /// The TLS handshake with the kubelet at `host` over `tcp`.
    pub async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host:?}: {e}"))
        })?;
        self.connector.connect(name, tcp).await
    }
}

/// Accepts the kubelet's certificate whatever it is (no `--kubelet-certificate-authority`),
/// still checking the handshake's signatures with it.
#[derive(Debug)]
struct AnyServerCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
