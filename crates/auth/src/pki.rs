//! The cluster's certificates, as kubeadm and k3s lay them out: one CA generated on first
//! start and kept in the data dir (`pki/ca.crt`, `pki/ca.key`, files 0600), a serving
//! certificate signed by it for the server's names and addresses, and client certificates
//! (CN the user, O the groups) for the admin kubeconfig and for joining nodes, which get
//! theirs through a CertificateSigningRequest the controllers sign
//! ([`ClusterCa::sign_request`], upstream's CSR signer).
//!
//! Bring-your-own certificates (`--tls-cert-file`, `--tls-private-key-file`,
//! `--client-ca-file`) bypass generation: see [`ServingFiles`].
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let ca = pernode_auth::pki::ClusterCa::load_or_create(dir.path()).unwrap();
//! let admin = ca.issue_client("system:admin", &["system:masters"], 365).unwrap();
//! let user = pernode_auth::x509::user_of_pem(&admin.cert_pem).unwrap();
//! assert_eq!(user.name, "system:admin");
//! ```

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

mod signing;

pub use signing::{BACKDATE, SHORT};

/// What went wrong reading or making certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Certificate { what: String, source: rcgen::Error },
    #[error("{0}")]
    Invalid(String),
    /// A certificate request pernode cannot write a certificate for (a subject repeating an
    /// attribute): refused for good, never retried.
    #[error("{0}")]
    Unsupported(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn cert_err(what: &str) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |source| PkiError::Certificate {
        what: what.to_string(),
        source,
    }
}

/// A certificate and its private key, PEM encoded.
#[derive(Clone)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a private key.
        f.debug_struct("CertAndKey").finish_non_exhaustive()
    }
}

/// The cluster CA: its certificate and the key that signs serving and client certificates,
/// and certificate requests ([`ClusterCa::sign_request`]).
pub struct ClusterCa {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// When the CA certificate expires: nothing it signs outlives it.
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("ClusterCa")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// How long the generated CA is valid (kubeadm's 10 years).
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// How long generated serving and client certificates are valid (kubeadm's 1 year).
pub const LEAF_VALIDITY_DAYS: i64 = 365;

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // A little slack for clocks that disagree, as kubeadm's certutil.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(days);
}

impl ClusterCa {
    /// Loads the CA from `dir` (`ca.crt`, `ca.key`), or generates it there on first start.
    pub fn load_or_create(dir: &Path) -> Result<ClusterCa, PkiError> {
        let cert_path = dir.join("ca.crt");
        let key_path = dir.join("ca.key");
        if cert_path.exists() || key_path.exists() {
            let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            return ClusterCa::from_pem(&cert_pem, &key_pem);
        }
        let ca = ClusterCa::generate()?;
        create_private_dir(dir)?;
        write_private(&key_path, ca.issuer.key().serialize_pem().as_bytes())?;
        write_private(&cert_path, ca.cert_pem.as_bytes())?;
        Ok(ca)
    }

    /// A new CA, `CN=pernode-ca`.
    pub fn generate() -> Result<ClusterCa, PkiError> {
        let key = KeyPair::generate().map_err(cert_err("generating the CA key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "pernode-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, CA_VALIDITY_DAYS);
        let cert = params
            .self_signed(&key)
            .map_err(cert_err("signing the CA"))?;
        Ok(ClusterCa {
            cert_pem: cert.pem(),
            not_after: params.not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its PEM certificate and key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<ClusterCa, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(cert_err("reading the CA key"))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(cert_err("reading the CA certificate"))?;
        let not_after = crate::csr::first_not_after(cert_pem.as_bytes())
            .and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok())
            .ok_or_else(|| PkiError::Invalid("reading the CA certificate's expiry".into()))?;
        Ok(ClusterCa {
            cert_pem: cert_pem.to_string(),
            issuer,
            not_after,
        })
    }

    /// A serving certificate for these DNS names and IP addresses (`CN=kube-apiserver`).
    pub fn issue_serving(&self, names: &[String]) -> Result<CertAndKey, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving_params(&mut params, names)?;
        self.sign(params, "the serving certificate", LEAF_VALIDITY_DAYS)
    }

    /// A client certificate for `user` in `groups` (CN and O, as upstream's x509 authenticator
    /// reads them), valid `days` days. At most one group: rcgen writes one attribute of each
    /// type (kubeadm's admin and node certificates have one too).
    pub fn issue_client(
        &self,
        user: &str,
        groups: &[&str],
        days: i64,
    ) -> Result<CertAndKey, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        match groups {
            [] => {}
            [group] => params
                .distinguished_name
                .push(DnType::OrganizationName, *group),
            _ => {
                return Err(PkiError::Invalid(format!(
                    "a generated client certificate names at most one group, not {groups:?}"
                )));
            }
        }
        params.distinguished_name.push(DnType::CommonName, user);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, "a client certificate", days)
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        what: &str,
        days: i64,
    ) -> Result<CertAndKey, PkiError> {
        validity(&mut params, days);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(cert_err(what))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(cert_err(what))?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The subject alternative names, key usages and server-auth usage of a serving certificate.
fn serving_params(params: &mut CertificateParams, names: &[String]) -> Result<(), PkiError> {
    params.subject_alt_names = names
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) if !is_dns_name(name) => Err(PkiError::Invalid(format!(
                "{name:?} is not a DNS name or an IP address"
            ))),
            Err(_) => name.clone().try_into().map(SanType::DnsName).map_err(|_| {
                PkiError::Invalid(format!("{name:?} is not a DNS name or an IP address"))
            }),
        })
        .collect::<Result<_, _>>()?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(())
}

/// A self-signed serving certificate named `common_name` for these DNS names and IP
/// addresses: what a kubelet serves when it was given no certificate (its
/// `<host>@<timestamp>` certificate in `--cert-dir`).
pub fn self_signed_serving(common_name: &str, names: &[String]) -> Result<CertAndKey, PkiError> {
    let what = "a self-signed serving certificate";
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    serving_params(&mut params, names)?;
    validity(&mut params, LEAF_VALIDITY_DAYS);
    let key = KeyPair::generate().map_err(cert_err(what))?;
    let cert = params.self_signed(&key).map_err(cert_err(what))?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The names a generated serving certificate covers: `localhost`, loopback, the host's name,
/// the in-cluster names of the `kubernetes` Service and its cluster IP (as kubeadm's), the
/// listen address when it is a specific one, and the `--tls-san` extras.
pub fn serving_names(listen: IpAddr, hostname: Option<&str>, extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "127.0.0.1",
        "::1",
        "10.96.0.1",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    if let Some(host) = hostname.filter(|h| !h.is_empty()) {
        names.push(host.to_string());
    }
    if !listen.is_unspecified() && !listen.is_loopback() {
        names.push(listen.to_string());
    }
    names.extend(extra.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// Whether `name` is a DNS name a certificate may carry (labels of letters, digits and `-`,
/// a leading `*.` wildcard allowed).
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Certificates given by flags instead of generated (kube-apiserver's `--tls-cert-file`,
/// `--tls-private-key-file`, `--client-ca-file`).
#[derive(Debug, Clone, Default)]
pub struct ServingFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
}

/// Reads a PEM file.
pub fn read_pem(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(io(path))
}

fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))
}

/// Writes `bytes` to `path` readable by its owner only (created 0600, then renamed into place
/// so a crash never leaves half a key).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_ca_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let first = ClusterCa::load_or_create(&pki).unwrap();
        for file in ["ca.crt", "ca.key"] {
            let mode = std::fs::metadata(pki.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let dir_mode = std::fs::metadata(&pki).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let again = ClusterCa::load_or_create(&pki).unwrap();
        assert_eq!(first.cert_pem, again.cert_pem);
    }

    #[test]
    fn client_certificates_carry_user_and_groups() {
        let ca = ClusterCa::generate().unwrap();
        let cert = ca.issue_client("jane", &["dev"], 1).unwrap();
        let user = crate::x509::user_of_pem(&cert.cert_pem).unwrap();
        assert_eq!(user.name, "jane");
        assert_eq!(user.groups, ["dev"]);
        assert!(ca.issue_client("jane", &["dev", "ops"], 1).is_err());
    }

    #[test]
    fn serving_names_cover_the_service_and_extras() {
        let names = serving_names(
            "192.168.1.5".parse().unwrap(),
            Some("web-1"),
            &["api.example.com".into(), "localhost".into()],
        );
        for expected in [
            "localhost",
            "kubernetes.default.svc",
            "10.96.0.1",
            "web-1",
            "192.168.1.5",
            "api.example.com",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        assert_eq!(names.iter().filter(|n| *n == "localhost").count(), 1);
        let any = serving_names("0.0.0.0".parse().unwrap(), None, &[]);
        assert!(!any.iter().any(|n| n == "0.0.0.0"));
        let bad = ClusterCa::generate()
            .unwrap()
            .issue_serving(&["not a name!".into()]);
        assert!(matches!(bad, Err(PkiError::Invalid(_))));
    }

    #[test]
    fn debug_never_shows_a_key() {
        let ca = ClusterCa::generate().unwrap();
        let cert = ca.issue_client("jane", &[], 1).unwrap();
        assert!(!format!("{cert:?}").contains("PRIVATE"));
    }
}
