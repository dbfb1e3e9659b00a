//! Joining a cluster with a bootstrap token, as `kubeadm join` and the kubelet's TLS
//! bootstrap do together: the agent holds only the server's address, a bootstrap token and
//! the CA's pin, and ends with its own client certificate `system:node:<name>` that it renews
//! before expiry.
//!
//! 1. [`discovery`]: read `kube-public/cluster-info` anonymously, check its signature by the
//!    token and its CA against the pin, read it again over TLS verified by that CA.
//! 2. [`csr`]: make a key and a CertificateSigningRequest (`kubernetes.io/kube-apiserver-client-kubelet`,
//!    CN `system:node:<name>`, O `system:nodes`) with the token's credentials, and wait until
//!    the controllers approve and sign it.
//! 3. [`credentials`]: keep the key and certificate as the kubelet does
//!    (`pki/kubelet-client-<time>.pem`, `pki/kubelet-client-current.pem` linking to it) and
//!    write `kubeconfig`; an agent restarted on the same root directory reuses them.
//! 4. [`rotation`]: the API client hands every request to the current certificate's client,
//!    and a new certificate is requested with the current one when 70–84% of its life has
//!    passed (the kubelet's jittered deadline), then swapped in.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pernode_agent::join::JoinError> {
//! use pernode_agent::join::{self, JoinOptions};
//! let opts = JoinOptions {
//!     server: "https://10.0.0.1:6443".into(),
//!     token: "abcdef.0123456789abcdef".into(),
//!     ca_cert_hashes: vec!["sha256:...".into()],
//!     unsafe_skip_ca_verification: false,
//!     node_name: "web-1".into(),
//!     dir: ".pernode-agent/web-1".into(),
//! };
//! let joined = join::join(&opts).await?;
//! tokio::spawn(joined.renewal);
//! // joined.client: a kube::Client authenticated as system:node:web-1
//! # Ok(()) }
//! ```

pub mod credentials;
pub mod csr;
pub mod discovery;
pub mod rotation;

use std::path::PathBuf;

use futures::future::BoxFuture;

/// What joining needs.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// The API server, `https://host:port`.
    pub server: String,
    /// The bootstrap token, `<id>.<secret>`.
    pub token: String,
    /// Accepted CA pins (`sha256:<hex>`); one must match.
    pub ca_cert_hashes: Vec<String>,
    /// Trust the discovered CA on the token's signature alone (kubeadm's
    /// `--discovery-token-unsafe-skip-ca-verification`).
    pub unsafe_skip_ca_verification: bool,
    /// The node's name: the certificate's user is `system:node:<node_name>`.
    pub node_name: String,
    /// The agent's root directory (`pki/` and `kubeconfig` go there).
    pub dir: PathBuf,
}

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("{0} is not a bootstrap token (<6 of [a-z0-9]>.<16 of [a-z0-9]>)")]
    BadToken(String),
    #[error("--server {0}: {1}")]
    BadServer(String, String),
    #[error(
        "no --ca-cert-hash given: pass the CA's pin (`pernode token create --print-join-command` prints it) or --discovery-token-unsafe-skip-ca-verification"
    )]
    NoPin,
    #[error("cluster discovery: {0}")]
    Discovery(String),
    #[error("certificate request: {0}")]
    Request(String),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// A joined node: its API client (always the current certificate's) and the renewal loop
/// to run beside the agent.
pub struct Joined {
    pub client: kube::Client,
    /// The API server's URL (as given).
    pub cluster_url: http::Uri,
    /// The cluster CA (PEM) the node trusts the API server with.
    pub ca_pem: String,
    /// Renews the certificate before it expires; runs until an unrecoverable error.
    pub renewal: BoxFuture<'static, Result<(), JoinError>>,
}

/// Joins (or, with credentials from an earlier join still valid, rejoins) the cluster.
pub async fn join(opts: &JoinOptions) -> Result<Joined, JoinError> {
    let (id, secret) = pernode_auth::bootstrap_token::parse(&opts.token)
        .ok_or_else(|| JoinError::BadToken(opts.token.clone()))?;
    let cluster_url: http::Uri = opts.server.parse().map_err(|e: http::uri::InvalidUri| {
        JoinError::BadServer(opts.server.clone(), e.to_string())
    })?;
    if cluster_url.scheme_str() != Some("https") {
        return Err(JoinError::BadServer(
            opts.server.clone(),
            "must be https://host:port".into(),
        ));
    }
    let store = credentials::Store::new(&opts.dir);
    let current = match store.load() {
        Some(c) if c.fresh_enough() => {
            tracing::info!(node = %opts.node_name, "reusing the node's client certificate");
            c
        }
        _ => {
            if opts.ca_cert_hashes.is_empty() && !opts.unsafe_skip_ca_verification {
                return Err(JoinError::NoPin);
            }
            let ca_pem =
                discovery::discover(&opts.server, id, secret, &opts.ca_cert_hashes).await?;
            let bootstrap =
                credentials::client(&opts.server, &ca_pem, credentials::Auth::Token(&opts.token))
                    .await?;
            let issued = csr::request(&bootstrap, &opts.node_name).await?;
            store.save(&ca_pem, &issued, &opts.server)?
        }
    };
    let ca_pem = current.ca_pem.clone();
    let rotating = rotation::Rotating::new(&opts.server, current).await?;
    let client = rotating.client();
    let renewal = Box::pin(rotation::renew(
        rotating,
        store,
        opts.node_name.clone(),
        opts.server.clone(),
    ));
    Ok(Joined {
        client,
        cluster_url,
        ca_pem,
        renewal,
    })
}
