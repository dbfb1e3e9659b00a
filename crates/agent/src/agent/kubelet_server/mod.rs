//! The kubelet port (10250) as the kubelet secures it: HTTPS only (plain HTTP gets Go's 400,
//! [`pernode_auth::plain_http`]), every request authenticated
//! ([`authn`]: client certificate, TokenReview'd bearer token, anonymous only when asked) and
//! authorized ([`authz`]: a SubjectAccessReview of `nodes/proxy`, `nodes/stats`, ... on this
//! node) before it reaches logs, exec, port-forward, stats or metrics. 401 `Unauthorized` and
//! 403 `Forbidden (user=..., verb=..., resource=nodes, subresource=...)` are the kubelet's
//! plain-text answers.
//!
//! The serving certificate is `--tls-cert-file`/`--tls-private-key-file`, else a self-signed
//! one kept in `<root-dir>/pki/kubelet.crt` and `kubelet.key` (made on first start, as the
//! kubelet's in `--cert-dir`). The API server presents its kubelet client certificate, signed
//! by the cluster CA, which is the default `--client-ca-file`.

pub mod authn;
pub mod authz;
mod expiring;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use pernode_auth::pki::{self, CertAndKey, PkiError};
use pernode_auth::tls::ClientCertCheck;
use pernode_auth::user::UserInfo;
use tower::ServiceExt;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `--authorization-mode`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AuthorizationMode {
    /// SubjectAccessReviews to the API server.
    #[default]
    Webhook,
    /// Any authenticated request.
    AlwaysAllow,
}

/// How the kubelet port serves and whom it lets in.
#[derive(Clone, Debug, Default)]
pub struct ServerAuthOptions {
    /// Serving certificate and key files (PEM); `None`: the self-signed pair in the root dir.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// CA whose client certificates authenticate users (`--client-ca-file`); `None`: no
    /// client certificates are accepted.
    pub client_ca_pem: Option<String>,
    /// Bearer tokens checked with TokenReview (`--authentication-token-webhook`).
    pub token_webhook: bool,
    /// Requests without credentials as `system:anonymous` (`--anonymous-auth`; kubeadm and
    /// pernode default to false).
    pub anonymous: bool,
    pub authorization: AuthorizationMode,
}

/// Errors setting the port up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the kubelet's serving certificate: {0}")]
    Certificate(#[from] PkiError),
}

/// The serving certificate: the given files, else the pair kept in `root_dir/pki` (made once
/// for the node's name and addresses).
fn serving_pair(
    opts: &ServerAuthOptions,
    root_dir: &Path,
    node: &str,
    ip: IpAddr,
) -> Result<CertAndKey, PkiError> {
    if let Some((cert, key)) = &opts.tls_files {
        return Ok(CertAndKey {
            cert_pem: pki::read_pem(cert)?,
            key_pem: pki::read_pem(key)?,
        });
    }
    let dir = root_dir.join("pki");
    let (cert, key) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    if let (Ok(cert_pem), Ok(key_pem)) = (pki::read_pem(&cert), pki::read_pem(&key)) {
        return Ok(CertAndKey { cert_pem, key_pem });
    }
    std::fs::create_dir_all(&dir).map_err(|source| PkiError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut names = vec![node.to_string(), ip.to_string()];
    if !ip.is_loopback() {
        names.push("127.0.0.1".into());
    }
    names.push("localhost".into());
    names.dedup();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let pair = pki::self_signed_serving(&format!("{node}@{stamp}"), &names)?;
    pki::write_private(&key, pair.key_pem.as_bytes())?;
    pki::write_private(&cert, pair.cert_pem.as_bytes())?;
    Ok(pair)
}

/// The kubelet port: its TLS configuration, authenticator and authorizer.
pub struct KubeletServer {
    tls: tokio_rustls::TlsAcceptor,
    client_certs: Option<ClientCertCheck>,
    authenticator: authn::Authenticator,
    authorizer: authz::Authorizer,
    node: String,
}

impl KubeletServer {
    /// Sets the port up for node `node` at `ip`, asking the API server through `client`.
    pub fn new(
        opts: &ServerAuthOptions,
        root_dir: &Path,
        node: &str,
        ip: IpAddr,
        client: &kube::Client,
    ) -> Result<KubeletServer, ServerError> {
        let pair = serving_pair(opts, root_dir, node, ip)?;
        let (mut config, client_certs) = match &opts.client_ca_pem {
            Some(ca) => {
                let tls = pernode_auth::tls::server_tls(&pair.cert_pem, &pair.key_pem, &[ca])?;
                ((*tls.config).clone(), Some(tls.client_certs))
            }
            None => {
                let config = rustls::ServerConfig::builder()
                    .with_no_client_auth()
                    .with_single_cert(
                        pernode_auth::tls::certificates(&pair.cert_pem)?,
                        pernode_auth::tls::private_key(&pair.key_pem)?,
                    )
                    .map_err(|e| PkiError::Invalid(format!("using the certificate: {e}")))?;
                (config, None)
            }
        };
        // Upgrades (exec, attach, port-forward) are HTTP/1.1's.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let authenticator = authn::Authenticator {
            tokens: opts
                .token_webhook
                .then(|| authn::TokenReviews::new(client.clone())),
            anonymous: opts.anonymous,
        };
        let authorizer = match opts.authorization {
            AuthorizationMode::AlwaysAllow => authz::Authorizer::AlwaysAllow,
            AuthorizationMode::Webhook => {
                authz::Authorizer::Webhook(authz::SubjectAccessReviews::new(client.clone()))
            }
        };
        Ok(KubeletServer {
            tls: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            client_certs,
            authenticator,
            authorizer,
            node: node.to_string(),
        })
    }

    /// Serves `router` on `listener` to authenticated, authorized clients, until the listener
    /// fails.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        router: Router,
    ) -> std::io::Result<()> {
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: keep serving.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let server = self.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let handshake = async {
                    if pernode_auth::plain_http::sent(&tcp).await {
                        pernode_auth::plain_http::answer(tcp).await;
                        return Err(std::io::Error::other("plain HTTP on the kubelet port"));
                    }
                    server.tls.accept(tcp).await
                };
                let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(client = %remote, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let certificate = match &server.client_certs {
                    Some(check) => check.user(stream.get_ref().1.peer_certificates()),
                    None => Ok(None),
                };
                let service = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let server = server.clone();
                    let router = router.clone();
                    let certificate = certificate.clone();
                    async move {
                        let req = req.map(Body::new);
                        let asked = Asked {
                            method: req.method().clone(),
                            path: req.uri().path().to_string(),
                            authorization: req
                                .headers()
                                .get(header::AUTHORIZATION)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string),
                        };
                        match server.admit(certificate, asked).await {
                            Ok(()) => router.oneshot(req).await,
                            Err(refusal) => Ok(refusal),
                        }
                    }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(stream),
                        hyper_util::service::TowerToHyperService::new(service),
                    )
                    .with_upgrades();
                if let Err(e) = connection.await {
                    tracing::debug!(client = %remote, error = %e, "connection ended");
                }
            });
        }
    }

    /// Authenticates and authorizes `req`, or answers it as the kubelet refuses.
    async fn admit(
        &self,
        certificate: Result<Option<UserInfo>, String>,
        asked: Asked,
    ) -> Result<(), Response<Body>> {
        let user = match self
            .authenticator
            .authenticate(certificate, asked.authorization.as_deref())
            .await
        {
            Ok(user) => user,
            Err(e) => {
                tracing::debug!(error = %e, "unauthenticated request to the kubelet port");
                return Err(plain(StatusCode::UNAUTHORIZED, "Unauthorized".into()));
            }
        };
        let attrs = authz::attributes(user, &self.node, &asked.method, &asked.path);
        match self.authorizer.authorize(&attrs).await {
            Ok(authz::Decision::Allowed) => Ok(()),
            Ok(authz::Decision::Denied) => Err(plain(
                StatusCode::FORBIDDEN,
                format!("Forbidden ({})", attrs.describe()),
            )),
            Err(e) => {
                tracing::warn!(error = %e, "authorizing a request to the kubelet port");
                Err(plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("Authorization error ({})", attrs.describe()),
                ))
            }
        }
    }
}

/// What authentication and authorization read of a request.
struct Asked {
    method: http::Method,
    path: String,
    authorization: Option<String>,
}

/// A plain-text answer, as go-restful's `WriteErrorString`.
fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
