//! The node's credentials on disk, laid out as the kubelet's (`pki/kubelet-client-<time>.pem`
//! holding certificate and key, `pki/kubelet-client-current.pem` a symlink to the newest,
//! swapped atomically; `kubeconfig` naming the server, the CA in `pki/ca.crt` and the current
//! file), and API clients built from them.

use std::path::{Path, PathBuf};

use base64::Engine;

use pernode_auth::pki::CertAndKey;

use super::JoinError;

/// How a client authenticates.
pub enum Auth<'a> {
    /// Nothing, and the server's certificate is not checked (discovery's first read only).
    InsecureAnonymous,
    /// Nothing; the server checked against the CA.
    Anonymous,
    /// A bearer token.
    Token(&'a str),
    /// A client certificate.
    Certificate { cert_pem: &'a str, key_pem: &'a str },
}

/// A kube client for `server` trusting `ca_pem`, authenticating with `auth`.
pub async fn client(server: &str, ca_pem: &str, auth: Auth<'_>) -> Result<kube::Client, JoinError> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut cluster = serde_json::json!({"server": server});
    match auth {
        Auth::InsecureAnonymous => cluster["insecure-skip-tls-verify"] = true.into(),
        _ => cluster["certificate-authority-data"] = b64(ca_pem).into(),
    }
    let user = match auth {
        Auth::InsecureAnonymous | Auth::Anonymous => serde_json::json!({}),
        Auth::Token(token) => serde_json::json!({"token": token}),
        Auth::Certificate { cert_pem, key_pem } => serde_json::json!({
            "client-certificate-data": b64(cert_pem),
            "client-key-data": b64(key_pem),
        }),
    };
    let kubeconfig: kube::config::Kubeconfig = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": "node", "user": user}],
        "contexts": [{"name": "node", "context": {"cluster": "cluster", "user": "node"}}],
        "current-context": "node",
    }))
    .map_err(|e| JoinError::BadServer(server.into(), e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| JoinError::BadServer(server.into(), e.to_string()))?;
    Ok(kube::Client::try_from(config)?)
}

/// The credentials in use: the CA, the certificate and key, and the certificate's validity.
#[derive(Clone)]
pub struct Current {
    pub ca_pem: String,
    pub issued: CertAndKey,
    pub not_before: k8s_openapi::jiff::Timestamp,
    pub not_after: k8s_openapi::jiff::Timestamp,
    /// When this agent took the certificate into use.
    pub since: k8s_openapi::jiff::Timestamp,
}

impl Current {
    /// Credentials from `ca_pem` and `issued`, if the certificate parses.
    pub fn new(ca_pem: String, issued: CertAndKey) -> Option<Current> {
        let (not_before, not_after) = validity(&issued.cert_pem)?;
        Some(Current {
            ca_pem,
            issued,
            not_before,
            not_after,
            since: k8s_openapi::jiff::Timestamp::now(),
        })
    }

    /// Whether the certificate is valid now (an expired one means joining again).
    pub fn fresh_enough(&self) -> bool {
        let now = k8s_openapi::jiff::Timestamp::now();
        self.not_before <= now && now < self.not_after
    }
}

/// The validity period of the first certificate in `pem`.
pub fn validity(pem: &str) -> Option<(k8s_openapi::jiff::Timestamp, k8s_openapi::jiff::Timestamp)> {
    let certificates = pernode_auth::tls::certificates(pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(certificates.first()?).ok()?;
    let at = |t: x509_parser::time::ASN1Time| {
        k8s_openapi::jiff::Timestamp::from_second(t.timestamp()).ok()
    };
    Some((
        at(cert.validity().not_before)?,
        at(cert.validity().not_after)?,
    ))
}

/// `pem`'s certificate and private-key blocks, apart (the kubelet keeps both in one file).
fn split_pem(pem: &str) -> CertAndKey {
    let mut both = CertAndKey {
        cert_pem: String::new(),
        key_pem: String::new(),
    };
    let mut rest = pem.as_bytes();
    while let Some((block, after)) = pernode_auth::pem::decode(rest) {
        let encoded = pernode_auth::pem::encode(&block.kind, &block.bytes);
        if block.kind.ends_with("PRIVATE KEY") {
            both.key_pem.push_str(&encoded);
        } else {
            both.cert_pem.push_str(&encoded);
        }
        rest = after;
    }
    both
}

/// The credentials' files under an agent's root directory.
pub struct Store {
    dir: PathBuf,
}

const CURRENT: &str = "kubelet-client-current.pem";

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            dir: root.to_path_buf(),
        }
    }

    fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// The saved credentials, if there are readable ones.
    pub fn load(&self) -> Option<Current> {
        let ca_pem = std::fs::read_to_string(self.pki().join("ca.crt")).ok()?;
        let both = std::fs::read_to_string(self.pki().join(CURRENT)).ok()?;
        Current::new(ca_pem, split_pem(&both))
    }

    /// Saves `issued` as the current credentials (and `ca_pem`, and the kubeconfig naming
    /// `server`): a new timestamped file, then the `current` link swapped by rename.
    pub fn save(
        &self,
        ca_pem: &str,
        issued: &CertAndKey,
        server: &str,
    ) -> Result<Current, JoinError> {
        let io = |context: String| move |source| JoinError::Io { context, source };
        let pki = self.pki();
        std::fs::create_dir_all(&pki).map_err(io(format!("creating {}", pki.display())))?;
        let write = |path: &Path, bytes: &[u8]| {
            pernode_auth::pki::write_private(path, bytes).map_err(|e| JoinError::Io {
                context: format!("writing {}", path.display()),
                source: std::io::Error::other(e.to_string()),
            })
        };
        write(&pki.join("ca.crt"), ca_pem.as_bytes())?;
        let stamp = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%d-%H-%M-%S%.f");
        let name = format!("kubelet-client-{stamp}.pem");
        write(
            &pki.join(&name),
            format!("{}{}", issued.cert_pem, issued.key_pem).as_bytes(),
        )?;
        let link = pki.join(format!(".{CURRENT}.tmp"));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&name, &link)
            .map_err(io(format!("linking {}", link.display())))?;
        std::fs::rename(&link, pki.join(CURRENT))
            .map_err(io(format!("replacing {}", pki.join(CURRENT).display())))?;
        let current_path = std::path::absolute(pki.join(CURRENT)).unwrap_or(pki.join(CURRENT));
        let ca_path = std::path::absolute(pki.join("ca.crt")).unwrap_or(pki.join("ca.crt"));
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: default-cluster\n  cluster:\n    certificate-authority: {}\n    server: {server}\ncontexts:\n- name: default-context\n  context:\n    cluster: default-cluster\n    namespace: default\n    user: default-auth\ncurrent-context: default-context\nusers:\n- name: default-auth\n  user:\n    client-certificate: {}\n    client-key: {}\n",
            ca_path.display(),
            current_path.display(),
            current_path.display(),
        );
        write(&self.dir.join("kubeconfig"), kubeconfig.as_bytes())?;
        Current::new(ca_pem.to_string(), issued.clone())
            .ok_or_else(|| JoinError::Request("the issued certificate does not parse".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_credentials_load_back_and_the_link_moves() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = pernode_auth::pki::ClusterCa::generate().expect("ca");
        let store = Store::new(dir.path());
        assert!(store.load().is_none());
        let first = ca
            .issue_client("system:node:a", &["system:nodes"], 1)
            .expect("cert");
        store
            .save(&ca.cert_pem, &first, "https://127.0.0.1:6443")
            .expect("save");
        let loaded = store.load().expect("load");
        assert_eq!(loaded.issued.cert_pem.trim(), first.cert_pem.trim());
        assert_eq!(loaded.issued.key_pem.trim(), first.key_pem.trim());
        assert!(loaded.fresh_enough());
        let target = std::fs::read_link(dir.path().join("pki").join(CURRENT)).expect("link");
        let second = ca
            .issue_client("system:node:a", &["system:nodes"], 2)
            .expect("cert");
        store
            .save(&ca.cert_pem, &second, "https://127.0.0.1:6443")
            .expect("save");
        assert_ne!(
            std::fs::read_link(dir.path().join("pki").join(CURRENT)).expect("link"),
            target
        );
        assert_eq!(
            store.load().expect("load").issued.cert_pem.trim(),
            second.cert_pem.trim()
        );
        let kubeconfig =
            std::fs::read_to_string(dir.path().join("kubeconfig")).expect("kubeconfig");
        assert!(kubeconfig.contains("client-certificate: /"), "{kubeconfig}");
    }
}
