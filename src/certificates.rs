//! The server's certificates for `pernode up` and `pernode apiserver`: generated on first start
//! in `<data-dir>/pki` (the cluster CA, kept; a serving certificate for the server's names,
//! made at each start so `--tls-san` changes take effect), or given by kube-apiserver's flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use pernode_auth::pki::{self, CertAndKey, ClusterCa};
use pernode_auth::tls::ServerTls;

#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// More names or IP addresses for the generated serving certificate (k3s's `--tls-san`).
    #[arg(long = "tls-san", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Serving certificate (PEM, with its chain) instead of a generated one.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The serving certificate's private key (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// CA whose client certificates authenticate users (CN the user, O the groups), in addition
    /// to the cluster CA's.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// The cluster CA's certificate (PEM) instead of the one kept in `<data-dir>/pki`: give
    /// every API server of a cluster the same one (with `--cluster-ca-key-file`), so that each
    /// accepts the client certificates the others' CA signed (kubeadm copies `ca.crt` and
    /// `ca.key` to every control-plane machine for the same reason).
    #[arg(long, requires = "cluster_ca_key_file")]
    pub cluster_ca_cert_file: Option<PathBuf>,
    /// The cluster CA's private key (PEM).
    #[arg(long, requires = "cluster_ca_cert_file")]
    pub cluster_ca_key_file: Option<PathBuf>,
    /// The client certificate the server presents to kubelets (default: one the cluster CA
    /// issues at each start to `kube-apiserver-kubelet-client`, whom the bootstrap policy
    /// binds to `system:kubelet-api-admin`).
    #[arg(long, requires = "kubelet_client_key")]
    pub kubelet_client_certificate: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, requires = "kubelet_client_certificate")]
    pub kubelet_client_key: Option<PathBuf>,
    /// CA that signs kubelets' serving certificates: checked when given; without it kubelets'
    /// certificates are not verified (they are self-signed by default), as kube-apiserver.
    #[arg(long)]
    pub kubelet_certificate_authority: Option<PathBuf>,
}

/// The cluster CA: the flags' files, else the one kept (made on first start) in `pki_dir`.
fn cluster_ca(pki_dir: &Path, args: &TlsArgs) -> anyhow::Result<ClusterCa> {
    if let (Some(cert), Some(key)) = (&args.cluster_ca_cert_file, &args.cluster_ca_key_file) {
        let read = |path: &PathBuf, flag: &str| {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading {flag} {}", path.display()))
        };
        return ClusterCa::from_pem(
            &read(cert, "--cluster-ca-cert-file")?,
            &read(key, "--cluster-ca-key-file")?,
        )
        .context("loading the cluster CA of --cluster-ca-cert-file and --cluster-ca-key-file");
    }
    ClusterCa::load_or_create(pki_dir)
        .with_context(|| format!("loading the cluster CA in {}", pki_dir.display()))
}

/// What the server serves with, and what its kubeconfig trusts and presents.
pub struct ServerCertificates {
    pub tls: ServerTls,
    /// The CA clients trust for the serving certificate (PEM).
    pub serving_ca_pem: String,
    /// The cluster CA: signs the admin's and nodes' client certificates.
    pub ca: ClusterCa,
}

impl ServerCertificates {
    /// The admin's client certificate (`system:admin` in `system:masters`).
    pub fn admin(&self) -> anyhow::Result<CertAndKey> {
        self.ca
            .issue_client("system:admin", &["system:masters"], pki::LEAF_VALIDITY_DAYS)
            .context("issuing the admin's client certificate")
    }
}

impl ServerCertificates {
    /// How the server connects to kubelets: the flags' client certificate (else one the
    /// cluster CA issues now) and kubelet CA.
    pub fn kubelet_client(
        &self,
        args: &TlsArgs,
    ) -> anyhow::Result<pernode_apiserver::node_proxy::KubeletClient> {
        let pair = match (&args.kubelet_client_certificate, &args.kubelet_client_key) {
            (Some(cert), Some(key)) => CertAndKey {
                cert_pem: pki::read_pem(cert)?,
                key_pem: pki::read_pem(key)?,
            },
            _ => self
                .ca
                .issue_client(
                    pernode_apiserver::node_proxy::KUBELET_CLIENT_USER,
                    &[],
                    pki::LEAF_VALIDITY_DAYS,
                )
                .context("issuing the kubelet client certificate")?,
        };
        let kubelet_ca = match &args.kubelet_certificate_authority {
            Some(path) => Some(pki::read_pem(path)?),
            None => None,
        };
        pernode_apiserver::node_proxy::KubeletClient::new(
            Some((&pair.cert_pem, &pair.key_pem)),
            kubelet_ca.as_deref(),
        )
        .context("setting up TLS to kubelets (--kubelet-client-certificate, --kubelet-certificate-authority)")
    }

    /// A client configuration for the server at `addr` as the admin, trusting its CA: what the
    /// kubeconfig says, for the binary's own clients (readiness, bench).
    pub fn admin_client(&self, addr: SocketAddr) -> anyhow::Result<kube::Config> {
        use base64::Engine;
        let url = format!("https://{}", crate::kubeconfig::reachable(addr));
        let mut config = kube::Config::new(url.parse()?);
        config.root_cert = Some(
            pernode_auth::tls::certificates(&self.serving_ca_pem)?
                .into_iter()
                .map(|c| c.to_vec())
                .collect(),
        );
        let admin = self.admin()?;
        let encode = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
        config.auth_info.client_certificate_data = Some(encode(&admin.cert_pem));
        config.auth_info.client_key_data = Some(encode(&admin.key_pem).into());
        Ok(config)
    }
}

/// Loads or generates the certificates for a server listening on `listen`.
pub fn load(
    data_dir: &Path,
    listen: SocketAddr,
    args: &TlsArgs,
) -> anyhow::Result<ServerCertificates> {
    let pki_dir = data_dir.join("pki");
    let ca = cluster_ca(&pki_dir, args)?;
    let (serving, serving_ca_pem) = match (&args.tls_cert_file, &args.tls_private_key_file) {
        (Some(cert), Some(key)) => {
            let cert_pem = pki::read_pem(cert)?;
            let key_pem = pki::read_pem(key)?;
            // Clients trust the last certificate of the given chain (its root, or itself).
            let last = last_certificate(&cert_pem)
                .with_context(|| format!("reading {}", cert.display()))?;
            (CertAndKey { cert_pem, key_pem }, last)
        }
        _ => {
            let hostname = pernode_agent::agent::host::hostname();
            let names = pki::serving_names(listen.ip(), Some(&hostname), &args.tls_san);
            let serving = ca
                .issue_serving(&names)
                .context("issuing the serving certificate (check --tls-san)")?;
            (serving, ca.cert_pem.clone())
        }
    };
    let extra_ca = match &args.client_ca_file {
        Some(path) => Some(pki::read_pem(path)?),
        None => None,
    };
    let mut client_cas = vec![ca.cert_pem.as_str()];
    client_cas.extend(extra_ca.as_deref());
    let tls = pernode_auth::tls::server_tls(&serving.cert_pem, &serving.key_pem, &client_cas)
        .context("setting up TLS")?;
    Ok(ServerCertificates {
        tls,
        serving_ca_pem,
        ca,
    })
}

/// The last PEM certificate block of `pem`.
fn last_certificate(pem: &str) -> anyhow::Result<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let end = pem.rfind(END).context("no certificate")?;
    let begin = pem[..end]
        .rfind("-----BEGIN CERTIFICATE-----")
        .context("no certificate")?;
    Ok(format!("{}\n", &pem[begin..end + END.len()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificates_survive_a_restart_with_the_same_ca() {
        let dir = tempfile::tempdir().expect("dir");
        let listen: SocketAddr = "127.0.0.1:6443".parse().expect("addr");
        let first = load(dir.path(), listen, &TlsArgs::default()).expect("first");
        let again = load(dir.path(), listen, &TlsArgs::default()).expect("again");
        assert_eq!(first.serving_ca_pem, again.serving_ca_pem);
        assert_eq!(first.ca.cert_pem, again.ca.cert_pem);
    }

    #[test]
    fn a_given_cluster_ca_is_used_instead_of_the_data_dirs() {
        let dir = tempfile::tempdir().expect("dir");
        let shared = ClusterCa::load_or_create(&dir.path().join("shared")).expect("ca");
        let args = TlsArgs {
            cluster_ca_cert_file: Some(dir.path().join("shared/ca.crt")),
            cluster_ca_key_file: Some(dir.path().join("shared/ca.key")),
            ..TlsArgs::default()
        };
        let listen: SocketAddr = "127.0.0.1:6443".parse().expect("addr");
        let one = load(&dir.path().join("one"), listen, &args).expect("one");
        let two = load(&dir.path().join("two"), listen, &args).expect("two");
        assert_eq!(one.ca.cert_pem, shared.cert_pem);
        assert_eq!(two.serving_ca_pem, shared.cert_pem);
        assert!(
            !dir.path().join("one/pki/ca.key").exists(),
            "no CA of its own"
        );
        let missing = TlsArgs {
            cluster_ca_cert_file: Some(dir.path().join("absent.crt")),
            cluster_ca_key_file: Some(dir.path().join("absent.key")),
            ..TlsArgs::default()
        };
        let e = load(&dir.path().join("three"), listen, &missing)
            .err()
            .expect("an error");
        assert!(format!("{e:#}").contains("--cluster-ca-cert-file"), "{e:#}");
    }

    #[test]
    fn given_certificates_are_served_and_their_root_trusted() {
        let dir = tempfile::tempdir().expect("dir");
        let own_ca = ClusterCa::generate().expect("ca");
        let serving = own_ca
            .issue_serving(&["localhost".into()])
            .expect("serving");
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        std::fs::write(&cert, format!("{}{}", serving.cert_pem, own_ca.cert_pem)).expect("cert");
        std::fs::write(&key, &serving.key_pem).expect("key");
        let args = TlsArgs {
            tls_cert_file: Some(cert),
            tls_private_key_file: Some(key),
            ..TlsArgs::default()
        };
        let loaded = load(
            &dir.path().join("data"),
            "127.0.0.1:0".parse().expect("addr"),
            &args,
        )
        .expect("load");
        assert_eq!(loaded.serving_ca_pem.trim(), own_ca.cert_pem.trim());
        let missing = TlsArgs {
            tls_cert_file: Some(dir.path().join("absent.crt")),
            tls_private_key_file: Some(dir.path().join("absent.key")),
            ..TlsArgs::default()
        };
        let e = load(
            &dir.path().join("data"),
            "127.0.0.1:0".parse().expect("addr"),
            &missing,
        );
        assert!(format!("{:#}", e.err().expect("an error")).contains("absent.crt"));
    }
}
