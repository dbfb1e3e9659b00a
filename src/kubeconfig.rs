//! The kubeconfig `pernode up` writes for kubectl and other clients: one cluster over plain HTTP
//! on loopback, no credentials (the server listens on loopback only unless told otherwise).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

/// The kubeconfig naming the server at `server`.
///
/// `insecure-skip-tls-verify: true` changes nothing for plain HTTP in kubectl, client-go or
/// kube-rs, but the official JavaScript client refuses an `http://` server without it ("HTTP
/// protocol is not allowed when skipTLSVerify is not set or false"). It goes when the server
/// speaks TLS and the kubeconfig carries its CA.
pub fn render(server: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: pernode\n  cluster:\n    insecure-skip-tls-verify: true\n    server: http://{server}\ncontexts:\n- name: pernode\n  context:\n    cluster: pernode\n    user: pernode\n    namespace: default\ncurrent-context: pernode\nusers:\n- name: pernode\n  user: {{}}\n"
    )
}

/// Writes the kubeconfig atomically (temp file + rename), so a reader polling for it never sees
/// half a file.
pub fn write(path: &Path, server: SocketAddr) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    // Owner only: a kubeconfig is a credential.
    let write_private = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(render(server).as_bytes())
    };
    write_private().with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("kubeconfig");
        write(&path, "127.0.0.1:6443".parse().expect("addr")).expect("write");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn names_the_real_address() {
        let text = render("127.0.0.1:41234".parse().unwrap());
        assert!(text.contains("server: http://127.0.0.1:41234"));
        // What the JavaScript client needs to accept plain HTTP.
        assert!(text.contains("    insecure-skip-tls-verify: true\n"));
        assert!(text.contains("current-context: pernode"));
    }
}
