//! What end-to-end tests of a real `pernode agent` need besides the process ([`Agent`]): a node
//! kubeconfig, and the unmounting of what its pods mounted.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Cluster;
use super::component::Component;

/// A real `pernode agent` process (see [`Component`]).
pub type Agent = Component;

impl Cluster {
    /// Writes to `file` a kubeconfig for node `node` (`system:node:<node>` in `system:nodes`,
    /// a certificate the cluster's CA signed) talking to `server` with the cluster's CA.
    pub fn node_kubeconfig(&self, file: &Path, node: &str, server: &str) {
        let kubeconfig = std::fs::read_to_string(self.kubeconfig()).expect("kubeconfig");
        let (cert, key) = self.client_certificate(&format!("system:node:{node}"), "system:nodes");
        let text = kubeconfig
            .lines()
            .map(|l| match l.trim().split_once(": ") {
                Some(("server", _)) => format!("    server: {server}"),
                Some(("client-certificate-data", _)) => {
                    format!("    client-certificate-data: {cert}")
                }
                Some(("client-key-data", _)) => format!("    client-key-data: {key}"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(file, text).expect("agent kubeconfig");
    }
}

/// Unmounts (lazily, with `umount -l`) whatever is still mounted under a directory when
/// dropped: the memory-backed volumes an agent on this host's mount namespace mounted, should
/// a test fail before its pods were torn down.
pub struct UnmountOnDrop(pub PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        let dir = self.0.display().to_string();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").args(["-l", p]).status();
        }
    }
}
