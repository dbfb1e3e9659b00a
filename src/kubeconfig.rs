//! The kubeconfig `pernode up` writes for kubectl and other clients: one cluster over HTTPS,
//! trusting the server's CA, with the admin's client certificate (`system:admin` in
//! `system:masters`), as kubeadm's `admin.conf`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use pernode_auth::pki::CertAndKey;

/// The address clients reach a server listening on `listen` by: loopback for a wildcard.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The kubeconfig naming the server at `server`, trusting `ca_pem`, authenticating with
/// `client`.
pub fn render(server: SocketAddr, ca_pem: &str, client: &CertAndKey) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: pernode\n  cluster:\n    certificate-authority-data: {}\n    server: https://{}\ncontexts:\n- name: pernode\n  context:\n    cluster: pernode\n    user: admin\n    namespace: default\ncurrent-context: pernode\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(ca_pem),
        reachable(server),
        b64(&client.cert_pem),
        b64(&client.key_pem),
    )
}

/// Writes the kubeconfig atomically (temp file + rename), so a reader polling for it never sees
/// half a file, readable by its owner only (it holds the admin's key).
pub fn write(
    path: &Path,
    server: SocketAddr,
    ca_pem: &str,
    client: &CertAndKey,
) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    pernode_auth::pki::write_private(path, render(server, ca_pem, client).as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> (String, CertAndKey) {
        let ca = pernode_auth::pki::ClusterCa::generate().expect("ca");
        let client = ca
            .issue_client("system:admin", &["system:masters"], 1)
            .expect("client");
        (ca.cert_pem, client)
    }

    #[test]
    fn the_kubeconfig_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("kubeconfig");
        let (ca, client) = admin();
        write(&path, "127.0.0.1:6443".parse().expect("addr"), &ca, &client).expect("write");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn names_the_real_address_over_https_with_credentials() {
        let (ca, client) = admin();
        let text = render("0.0.0.0:41234".parse().expect("addr"), &ca, &client);
        assert!(text.contains("server: https://127.0.0.1:41234\n"), "{text}");
        assert!(!text.contains("insecure-skip-tls-verify"));
        let kubeconfig: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
        let user = &kubeconfig["users"][0]["user"];
        let cert = base64::engine::general_purpose::STANDARD
            .decode(user["client-certificate-data"].as_str().expect("cert"))
            .expect("base64");
        let who = pernode_auth::x509::user_of_pem(std::str::from_utf8(&cert).expect("utf8"))
            .expect("user");
        assert_eq!(who.name, "system:admin");
        assert!(text.contains("current-context: pernode"));
    }
}
